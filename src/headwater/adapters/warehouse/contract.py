"""The warehouse interface shared by every engine (DuckDB, PostgreSQL, later others).

Tables (DESIGN.md §6), in schema ``headwater`` where the engine has schemas:

- ``identities``: one row per (``_pipeline_id``, ``_source_id``) with meta columns
  ``_pipeline_id, _connection_id, _source_id, _source_updated_at, _run_id,
  _imported_at, _profile_id`` followed by one column per Customer Model leaf.
- ``profiles``: ``_profile_id, _updated_at, _identity_count`` then the model columns.
- ``profile_changes``: identity resolution's log of merges and splits: ``run_id,
  changed_at, kind`` (``merge``/``split``), ``before_ids, after_ids`` (JSON arrays).
- ``pipeline_state``: one row per pipeline: the run that owns it (the fencing token) and
  its saved `PipelineState` as JSON (see `ownership`).

Contract for every implementation:

- Ownership (DESIGN.md §6 rule 6).  `claim` makes a run the owner of a pipeline, taking
  it over from any earlier run (which run may run at all is the metadata store's
  decision: one live run per pipeline), and returns the state saved in *this*
  warehouse, or None when it holds none (a new warehouse, a dropped schema, a replaced
  file: the caller then runs in full, rule 5).  `write` and `purge_unseen` check inside
  their own transaction, before anything else, that ``run_id`` still owns the pipeline;
  if not they raise `OwnershipLost` and change nothing.  The check is one statement on
  one row, serialised against a concurrent `claim` (a takeover waits for a write in
  flight, or conflicts with it; never do both commit as owners).  A pipeline nobody
  claimed has no owner: every write or purge for it is refused.
- State (rule 5, with rule 1).  ``WriteBatch.state`` and the ``state`` of
  `purge_unseen`, when given, are saved in the same transaction as the rows they cover:
  both commit or neither.  `pipeline_state` reads the row back.
- `write` applies one batch in ONE transaction: merge (upsert) the rows on
  (``_pipeline_id``, ``_source_id``), delete the listed source ids, and record every
  identity it wrote or deleted (a deleted one with its ``_profile_id``) in
  ``pending_identities`` (`pending`).  Either all of it commits or nothing.  Writing
  the same batch twice leaves the same state (idempotent), so a retry after a crash is
  always safe.  Writes never touch ``profiles``; an updated identity keeps its
  ``_profile_id``, and a new one gets none or (``provisional_ids``, DuckDB) a
  *provisional* one: the id its own new profile
  would get from the resolution of the writing run (``ids.new_profile_id`` of the run
  id and its key), which names no profile until a resolution makes it one.  Identity
  resolution sets the real ids after the write commits, from the pending rows
  (``services/identity``), treating an id that names no profile as none.
- A row whose values the engine refuses (a *data* error: an integer beyond 64 bits, a
  NUL character in text on PostgreSQL, a decimal beyond the column's precision...) does
  not fail the batch: `write` leaves that row out, commits the others (and the deletes)
  in the one transaction, and lists it in ``WriteResult.rejected`` as (source id,
  message naming the column or the engine's reason; redacted and truncated).  The
  caller counts those as per-record errors at step "write".  A rejected row leaves
  the stored identity of that source id as it was.
- `purge_unseen` deletes, in one transaction, the pipeline's identities whose
  ``_run_id`` differs from the given run and whose source id is not in `keep`,
  recording them as pending.  It returns how many identities it deleted.  A run that
  claims a pipeline it owned last (it resumes after the service put it back in the
  queue) first labels the rows its earlier attempt wrote ``<run id>~earlier``
  (`ownership.claim`), so the purge weighs them like any row it did not write.
- `delete_pipeline` removes the pipeline's identities (recorded as pending) and its
  ``pipeline_state`` row (no ownership needed: the pipeline is going away).
- Model changes alter both tables and keep the model's generation (`model_state`).
  `ensure_columns` creates the tables and adds the model's missing columns, unless a
  rename or drop replaced that model: then it alters nothing; either way it returns the
  `ModelState` (the generation; whether the model is outdated).  `change_model` renames,
  drops and adds columns in one transaction, raising the generation for a rename or
  drop.  A `write` with rows whose ``WriteBatch.model`` is not the generation of the
  tables raises `ModelChanged` and changes nothing (checked in its transaction, after
  the ownership check, serialised against a concurrent `change_model`).
- Identity resolution (capability; the rules live in ``services/identity``, the
  statements in `profile_store`).  ``identities_by_key``, ``identities_sharing``,
  ``identities_in_profiles``, ``all_identity_records`` and ``profile_records`` read
  plain `profile_store` records, each in one read transaction; ``identities_sharing``
  finds, in one set-based statement, the identities whose trimmed, lower-cased
  identifier column equals a probed key (integer identifiers compare as integers) or
  whose (connection id, source id) is probed: never fewer than the exact matches (the
  service filters by its own rules).  ``apply_profiles`` writes one resolution in one
  transaction (profile upserts and deletions, identities' ``_profile_id``, logged
  changes, and the ``pending_identities`` batches it resolved, read before by
  ``pending_identities``); applying the same write twice leaves the same state and
  logs each change once.  The caller holds `resolution_lock` from its first read to the apply.
  ``profile_changes`` reads the log, oldest first.
- Infrastructure failures (connection lost, disk full, a table changed under us) raise
  `WarehouseError` (transient: the service may retry the run); nothing of the batch
  remains after one.  A batch the engine refuses even after the refused rows were left
  out (a failure no single row explains) raises ``RejectedData`` (terminal: a data
  error, which retrying cannot fix); nothing of it remains either.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from headwater.adapters.warehouse.identity_rebuild import Job, Outcome
from headwater.adapters.warehouse.model_state import ModelChange, ModelChanged, ModelState
from headwater.adapters.warehouse.ownership import OwnedState, OwnershipLost
from headwater.adapters.warehouse.pending import Pending
from headwater.adapters.warehouse.profile_store import (
    ChangeRecord,
    IdentityRecord,
    ProfileRecord,
    ProfileWrite,
)
from headwater.kernel.errors import TransientError
from headwater.kernel.model import Column
from headwater.kernel.records import IdentityRow
from headwater.kernel.state import PipelineState

__all__ = ["ModelChange", "ModelChanged", "ModelState", "OwnedState", "OwnershipLost"]

META_COLUMNS = (
    "_pipeline_id",
    "_connection_id",
    "_source_id",
    "_source_updated_at",
    "_run_id",
    "_imported_at",
    "_profile_id",
)
PROFILE_META_COLUMNS = ("_profile_id", "_updated_at", "_identity_count")


class WarehouseError(TransientError):
    """The warehouse could not be reached or refused an operation."""


@dataclass(frozen=True)
class Capabilities:
    """What an engine is and can do, as data: only what a caller reads (the engine's
    name, shown by ``warehouse show``).  A capability joins when a caller branches on it."""

    engine: str  # "duckdb" | "postgresql"


@dataclass
class WriteBatch:
    pipeline_id: str
    connection_id: str
    run_id: str
    rows: Sequence[IdentityRow] = ()
    deletes: Sequence[str] = ()
    #: Saved as the pipeline's state in the batch's transaction (None: left as it is).
    state: PipelineState | None = None
    #: The model generation the rows were shaped under (`ensure_columns`): a batch with
    #: rows is refused when a rename or drop changed it since (None: not checked).
    model: int | None = None


@dataclass
class WriteResult:
    inserted: int = 0  # identities that did not exist before
    updated: int = 0  # identities that existed and were overwritten
    deleted: int = 0  # identities removed by `deletes`
    extra: dict[str, Any] = field(default_factory=dict)
    # Rows left out because the engine refused a value: (source id, message).
    rejected: list[tuple[str, str]] = field(default_factory=list)

    @property
    def written(self) -> int:
        return self.inserted + self.updated


class Warehouse(Protocol):
    capabilities: Capabilities
    #: Whether a write gives a new identity a provisional ``_profile_id`` (see above).
    provisional_ids: ClassVar[bool]

    def ensure_columns(self, columns: Sequence[Column]) -> ModelState:
        """Create the tables if needed and add any missing model column (never drops),
        unless a rename or drop replaced this model (see above)."""

    def change_model(self, change: ModelChange) -> ModelState:
        """Apply a model change to both tables in one transaction (see above)."""

    def claim(self, pipeline_id: str, run_id: str) -> PipelineState | None:
        """Make `run_id` the pipeline's owner; the state saved here, if any."""

    def bind_workspace(self, workspace_id: str, *, take: bool = False) -> str | None:
        """Record the workspace whose customers this warehouse holds; if it holds
        another's, return that workspace's id and change nothing (`take`: record this
        one instead)."""

    def pipeline_state(self, pipeline_id: str) -> OwnedState | None:
        """The pipeline's owner and saved state in this warehouse (None: never claimed)."""

    def write(self, batch: WriteBatch) -> WriteResult: ...

    def purge_unseen(
        self,
        pipeline_id: str,
        run_id: str,
        keep: Collection[str] = (),
        state: PipelineState | None = None,
    ) -> int: ...

    def delete_pipeline(self, pipeline_id: str) -> int:
        """Remove every identity of a pipeline (recorded as pending); returns the count."""

    def identities(self, pipeline_id: str | None = None) -> list[dict[str, Any]]:
        """All identity rows (optionally of one pipeline) as dicts, for tests and previews."""

    def profiles(self) -> list[dict[str, Any]]: ...

    def count(self, pipeline_id: str | None = None) -> int: ...

    def count_profiles(self) -> int:
        """How many profiles there are (cheap: no rows are fetched)."""

    # -- identity resolution (see the module docstring) ---------------------------------

    def identities_by_key(self, keys: Collection[tuple[str, str]]) -> list[IdentityRecord]: ...

    def identities_sharing(
        self, keys: Mapping[str, Collection[Any]], sources: Collection[tuple[str, str]]
    ) -> list[IdentityRecord]: ...

    def identities_in_profiles(self, profile_ids: Collection[str]) -> list[IdentityRecord]: ...

    def identities_with_members(
        self, keys: Collection[tuple[str, str]], former_profiles: Collection[str]
    ) -> list[IdentityRecord]:
        """The identities with these keys and every identity of the profiles they are in
        or of `former_profiles`, in one statement (`identity_keys.identities_with_members`)."""

    def all_identity_records(self) -> list[IdentityRecord]: ...

    def profile_records(
        self, profile_ids: Collection[str] | None = None
    ) -> list[ProfileRecord]: ...

    def profile_page(
        self,
        search: str | None = None,
        after: str | tuple[Any, str] | None = None,
        limit: int = 50,
    ) -> list[ProfileRecord]:
        """Up to `limit` profiles after the profile `after`, most recently changed first
        (then by id), each with a value containing `search` (case-insensitive) if
        given; in the warehouse (`profile_pages`)."""

    def count_matching_profiles(self, search: str | None = None) -> int:
        """How many profiles have a value containing `search` (all without one)."""

    def profile_changes(self, involving: str | None = None) -> list[ChangeRecord]:
        """Logged merges and splits, oldest first (with `involving`: of that profile id)."""

    def pending_identities(self) -> Pending:
        """The identities written or deleted since they were last resolved."""

    def apply_profiles(self, write: ProfileWrite) -> None: ...

    def pending_summary(self) -> tuple[frozenset[str], int]:
        """The pending batches and their number of rows (`pending.summary`)."""

    def identity_keys_fingerprint(self) -> str | None:
        """The settings fingerprint ``identity_keys`` was built with (None: no table)."""

    def identities_sharing_keys(
        self,
        keys: Sequence[Collection[Any]],
        integer: Sequence[bool],
        sources: Collection[tuple[str, str]],
        known: Collection[tuple[str, str]] = (),
    ) -> list[IdentityRecord]:
        """Identities whose ``identity_keys`` key of identifier j is in ``keys[j]``, or
        whose (connection id, source id) is in `sources` (`identity_keys.sharing`);
        those whose (pipeline id, source id) is in `known` (the caller holds them) may
        be left out."""

    def rebuild_profiles(self, job: Job) -> Outcome:
        """Recompute every profile set-based in one transaction (`identity_rebuild`);
        the caller holds `resolution_lock`."""

    def resolution_lock(self) -> AbstractContextManager[None]:
        """Held from a resolution's first read to its `apply_profiles`: one resolution
        at a time per warehouse (PostgreSQL: a session advisory lock; DuckDB: the
        connection's lock, one process holding the file)."""

    def interrupt(self) -> None:
        """From any thread: the statement under way (or the wait for `resolution_lock`)
        ends with `WarehouseError`, as does every later operation, until `close`.  For
        a run asked to stop while it resolves identities: the resolution's transaction
        rolls back, so what it would have resolved stays pending."""

    def close(self) -> None: ...
