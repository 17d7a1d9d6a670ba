"""``pending_identities``: what identity resolution still has to look at.

Every write batch records the identities it wrote (and, for the ones it deletes, the
profile id they were in) in ``pending_identities``, in the batch's own transaction, so
a crash between a run's writes and its resolution cannot lose them: the next resolution
(or a rebuild) picks them up.  Rows are tagged with the batch that wrote them
(``_batch``, a fresh id per transaction); a resolution reads the pending rows, and
removes exactly the batches it read when it applies its plan, so rows committed by a
concurrent write meanwhile stay for the next one.  Duplicates are harmless (the reader
takes a set), so writing them costs one plain INSERT per batch, no index.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from headwater.adapters.warehouse import sql
from headwater.adapters.warehouse.ownership import Execute, Placeholder


@dataclass(frozen=True)
class Pending:
    """The pending identities read by one resolution."""

    #: (pipeline id, source id) of every identity written or deleted.
    keys: frozenset[tuple[str, str]]
    #: Profile ids that deleted identities were in.
    former_profiles: frozenset[str]
    #: The batches read (removed by the resolution's apply).
    batches: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.keys)


def new_batch() -> str:
    """A batch tag: hexadecimal only, so it can be written into a statement as is."""
    return uuid.uuid4().hex


def from_rows(schema: str, relation: str, batch: str, p_pipe: str) -> str:
    """INSERT the source ids of `relation` (the staged or merged rows) as pending."""
    return (
        f"INSERT INTO {sql.quote(schema)}.pending_identities (_batch, _pipeline_id, "
        f"_source_id) SELECT '{batch}', {p_pipe}, r._source_id FROM {relation} AS r"
    )


def from_identities(schema: str, where: str, batch: str) -> str:
    """INSERT the identities matching `where` as pending, with their profile ids (run
    right before deleting them)."""
    s = sql.quote(schema)
    return (
        f"INSERT INTO {s}.pending_identities (_batch, _pipeline_id, _source_id, _profile_id) "
        f"SELECT '{batch}', _pipeline_id, _source_id, _profile_id FROM {s}.identities "
        f"WHERE {where}"
    )


def read(execute: Execute, schema: str, text: str) -> Pending:
    """Every pending row (one statement: one consistent snapshot)."""
    rows = execute(
        f"SELECT _batch, _pipeline_id, _source_id, CAST(_profile_id AS {text}) "
        f"FROM {sql.quote(schema)}.pending_identities",
        {},
    )
    return Pending(
        keys=frozenset((r[1], r[2]) for r in rows),
        former_profiles=frozenset(r[3] for r in rows if r[3] is not None),
        batches=frozenset(r[0] for r in rows),
    )


#: Up to this many batches are listed as literals in `clear` (more: a bound array).
LISTED = 1_000


def clear(
    execute: Execute, schema: str, ph: Placeholder, text: str, batches: Collection[str]
) -> None:
    """Remove the pending rows of these batches (inside the apply's transaction).

    A few batches (one per write since the last resolution, usually) are listed as
    literals: DuckDB joins a bound array's ``unnest`` (4-12 ms at a million identities,
    against 0.4 ms for the list)."""
    if not batches:
        return
    table = f"{sql.quote(schema)}.pending_identities"
    if len(batches) <= LISTED:
        listed = ", ".join("'" + b.replace("'", "''") + "'" for b in sorted(batches))
        execute(f"DELETE FROM {table} WHERE _batch IN ({listed})", {})
        return
    execute(
        f"DELETE FROM {table} WHERE _batch IN (SELECT unnest(CAST({ph('batches')} AS {text}[])))",
        {"batches": sorted(batches)},
    )


def count(execute: Execute, schema: str) -> int:
    found = execute(f"SELECT count(*) FROM {sql.quote(schema)}.pending_identities", {})
    return int(found[0][0]) if found else 0


def summary(execute: Execute, schema: str) -> tuple[frozenset[str], int]:
    """The pending batches and how many rows they hold (an identity written twice
    counts twice), without reading the rows: a first import leaves millions, and a
    rebuild needs only the batches."""
    rows = execute(
        f"SELECT _batch, count(*) FROM {sql.quote(schema)}.pending_identities GROUP BY _batch",
        {},
    )
    return frozenset(r[0] for r in rows), sum(int(r[1]) for r in rows)
