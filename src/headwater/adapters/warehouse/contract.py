"""The warehouse interface shared by every engine (DuckDB, PostgreSQL, later others).

Tables (DESIGN.md §6), in schema ``headwater`` where the engine has schemas:

- ``identities``: one row per (``_pipeline_id``, ``_source_id``) with meta columns
  ``_pipeline_id, _connection_id, _source_id, _source_updated_at, _run_id,
  _imported_at, _profile_id`` followed by one column per Customer Model leaf.
- ``profiles``: ``_profile_id, _updated_at, _identity_count`` then the model columns.

Contract for every implementation:

- `write` applies one batch in ONE transaction: merge (upsert) the rows on
  (``_pipeline_id``, ``_source_id``), delete the listed source ids, and update the
  profiles of exactly the touched identities.  Either all of it commits or nothing.
  Writing the same batch twice leaves the same state (idempotent), so a retry after a
  crash is always safe.  ``_profile_id`` of an identity never changes once assigned.
- A row whose values the engine refuses (a *data* error: an integer beyond 64 bits, a
  NUL character in text on PostgreSQL, a decimal beyond the column's precision...) does
  not fail the batch: `write` leaves that row out, commits the others (and the deletes)
  in the one transaction, and lists it in ``WriteResult.rejected`` as (source id,
  message naming the column or the engine's reason; redacted and truncated).  The
  caller counts those as per-record errors at step "write".  A rejected row leaves
  the stored identity of that source id as it was.
- `purge_unseen` deletes, in one transaction, the pipeline's identities whose
  ``_run_id`` differs from the given run and whose source id is not in `keep`, and
  their profiles.  It returns how many identities it deleted.
- Model changes (`ensure_columns`, `rename_column`, `drop_column`) alter both tables.
- Infrastructure failures (connection lost, disk full, a table changed under us) raise
  `WarehouseError` (transient); nothing of the batch remains after one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from headwater.kernel.errors import TransientError
from headwater.kernel.model import Column
from headwater.kernel.records import IdentityRow

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
    """What an engine can do, as data."""

    engine: str
    bulk_load: str  # "copy" | "arrow"
    transactional_ddl: bool
    schema: str | None


@dataclass
class WriteBatch:
    pipeline_id: str
    connection_id: str
    run_id: str
    rows: Sequence[IdentityRow] = ()
    deletes: Sequence[str] = ()


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

    def ensure_columns(self, columns: Sequence[Column]) -> None:
        """Create the tables if needed and add any missing model column (never drops)."""

    def rename_column(self, old: str, new: str) -> None: ...

    def drop_column(self, name: str) -> None: ...

    def write(self, batch: WriteBatch) -> WriteResult: ...

    def purge_unseen(self, pipeline_id: str, run_id: str, keep: Collection[str] = ()) -> int: ...

    def delete_pipeline(self, pipeline_id: str) -> int:
        """Remove every identity of a pipeline (and its profiles); returns the count."""

    def identities(self, pipeline_id: str | None = None) -> list[dict[str, Any]]:
        """All identity rows (optionally of one pipeline) as dicts, for tests and previews."""

    def profiles(self) -> list[dict[str, Any]]: ...

    def count(self, pipeline_id: str | None = None) -> int: ...

    def count_profiles(self) -> int:
        """How many profiles there are (cheap: no rows are fetched)."""

    def close(self) -> None: ...
