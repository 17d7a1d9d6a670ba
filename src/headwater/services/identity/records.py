"""The plain values identity resolution reads and produces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple


class IdentityKey(NamedTuple):
    """An identity's unique key in the warehouse; also its stable sort key."""

    pipeline_id: str
    source_id: str


@dataclass(frozen=True, slots=True)
class Identity:
    """One ``identities`` row as resolution sees it.

    `values` are the Customer Model values by column name.  `profile_id` is the profile
    the identity is in *before* this resolution (``None`` for one never resolved).
    """

    key: IdentityKey
    connection_id: str
    source_updated_at: datetime | None
    values: Mapping[str, Any]
    profile_id: str | None = None


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One ``profiles`` row."""

    id: str
    updated_at: datetime
    identity_count: int
    values: Mapping[str, Any]


class ChangeKind(StrEnum):
    MERGE = "merge"
    SPLIT = "split"


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """One ``profile_changes`` row: profiles `before` became profiles `after`.

    A merge has several ids before and one after; a split one before and several after.
    """

    kind: ChangeKind
    before: tuple[str, ...]
    after: tuple[str, ...]
    run_id: str
    at: datetime


@dataclass(frozen=True)
class Context:
    """What a resolution needs besides the identities.

    `run_id` names the run (or rebuild) in `profile_changes` and salts the ids of new
    profiles; `at` is its time, the `_updated_at` of every profile it changes.
    `pipeline_order` breaks ties between values changed at the same instant: a
    pipeline earlier in it wins (pipelines missing from it come after, by id).
    """

    run_id: str
    at: datetime
    pipeline_order: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProfilePlan:
    """What one resolution writes, applied by the store in one transaction.

    `upserts` are the profile rows that are new or whose values, count or id changed;
    `removed` the profile ids that no longer exist; `memberships` the new profile id of
    every identity whose profile id changed; `changes` every merge and split.
    `considered` is how many identities the resolution looked at (its work).
    """

    upserts: tuple[ProfileRow, ...] = ()
    removed: tuple[str, ...] = ()
    memberships: Mapping[IdentityKey, str] = field(default_factory=dict)
    changes: tuple[ProfileChange, ...] = ()
    considered: int = 0
