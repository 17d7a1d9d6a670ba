"""The identity-resolution methods of the `Warehouse` contract, shared by the SQL engines.

`SQLWarehouse` (``sql_warehouse``) supplies the one hook, `_with_profile_args`: run a
function inside a transaction of its own with `profile_store`'s arguments (statement
runner, schema, spelling, model columns), translating the engine's errors as its other
operations do.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

from headwater.adapters.warehouse import (
    identity_keys,
    identity_rebuild,
    pending,
    profile_pages,
    profile_store,
)
from headwater.adapters.warehouse.identity_rebuild import Job, Outcome
from headwater.adapters.warehouse.identity_values import Reserve
from headwater.adapters.warehouse.pending import Pending
from headwater.adapters.warehouse.profile_store import (
    Args,
    ChangeRecord,
    IdentityRecord,
    ProfileRecord,
    ProfileWrite,
)

R = TypeVar("R")


class ProfileMethods:
    """Mixed into an engine's warehouse class; see the contract for each method."""

    def _with_profile_args(self, what: str, fn: Callable[[Args], R]) -> R:
        raise NotImplementedError  # `SQLWarehouse` defines it

    def identities_by_key(self, keys: Collection[tuple[str, str]]) -> list[IdentityRecord]:
        return self._with_profile_args(
            "identity read", lambda a: profile_store.identities_by_key(*a, keys)
        )

    def identities_sharing(
        self, keys: Mapping[str, Collection[Any]], sources: Collection[tuple[str, str]]
    ) -> list[IdentityRecord]:
        return self._with_profile_args(
            "identity read", lambda a: identity_keys.loosely_sharing(*a, keys, sources)
        )

    def identities_in_profiles(self, profile_ids: Collection[str]) -> list[IdentityRecord]:
        return self._with_profile_args(
            "identity read", lambda a: profile_store.identities_in_profiles(*a, profile_ids)
        )

    def identities_with_members(
        self, keys: Collection[tuple[str, str]], former_profiles: Collection[str]
    ) -> list[IdentityRecord]:
        return self._with_profile_args(
            "identity read",
            lambda a: identity_keys.identities_with_members(*a, keys, former_profiles),
        )

    def all_identity_records(self) -> list[IdentityRecord]:
        return self._with_profile_args("identity read", lambda a: profile_store.all_identities(*a))

    def profile_records(self, profile_ids: Collection[str] | None = None) -> list[ProfileRecord]:
        return self._with_profile_args(
            "profile read", lambda a: profile_store.profile_rows(*a, profile_ids)
        )

    def profile_page(
        self,
        search: str | None = None,
        after: str | tuple[Any, str] | None = None,
        limit: int = 50,
    ) -> list[ProfileRecord]:
        return self._with_profile_args(
            "profile read", lambda a: profile_pages.page(*a, search, after, limit)
        )

    def count_matching_profiles(self, search: str | None = None) -> int:
        return self._with_profile_args("profile read", lambda a: profile_pages.count(*a, search))

    def profile_changes(self, involving: str | None = None) -> list[ChangeRecord]:
        return self._with_profile_args(
            "profile read", lambda a: profile_store.changes(a[0], a[1], a[2], involving)
        )

    def pending_identities(self) -> Pending:
        return self._with_profile_args(
            "identity read", lambda a: profile_store.read_pending(a[0], a[1], a[2])
        )

    def pending_summary(self) -> tuple[frozenset[str], int]:
        return self._with_profile_args("identity read", lambda a: pending.summary(a[0], a[1]))

    def apply_profiles(self, write: ProfileWrite) -> None:
        def apply(a: Args) -> None:
            profile_store.apply(*a, write)
            if write.keys is not None:
                identity_keys.write_rows(a[0], a[1], a[2], write.keys)

        self._with_profile_args("profile write", apply)

    def identity_keys_fingerprint(self) -> str | None:
        return self._with_profile_args(
            "identity read", lambda a: identity_keys.fingerprint(a[0], a[1], a[2])
        )

    def identities_sharing_keys(
        self,
        keys: Sequence[Collection[Any]],
        integer: Sequence[bool],
        sources: Collection[tuple[str, str]],
        known: Collection[tuple[str, str]] = (),
    ) -> list[IdentityRecord]:
        return self._with_profile_args(
            "identity read", lambda a: identity_keys.sharing(*a, keys, integer, sources, known)
        )

    def _rebuild_memory(self) -> AbstractContextManager[None]:
        """Held around a full rebuild (an engine may give it more memory)."""
        return nullcontext()

    def _rebuild_reserve(self) -> Reserve | None:
        """Told the memory a full rebuild's widest step needs (an engine bounding its
        memory raises the bound until the rebuild ends); None: nothing to tell."""
        return None

    def rebuild_profiles(self, job: Job) -> Outcome:
        with self._rebuild_memory():
            reserve = self._rebuild_reserve()
            return self._with_profile_args(
                "profile rebuild", lambda a: identity_rebuild.rebuild(*a, job, reserve)
            )
