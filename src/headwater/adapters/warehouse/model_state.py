"""Which Customer Model the warehouse's tables are at (DESIGN.md §6: a model change
alters the tables), so that no run writes with a model a rename or drop replaced.

Table ``model_state``: one row with the model *generation* (a number that each rename
or drop of properties raises, in the transaction that changes the columns) and the
fingerprints of the models such changes replaced (*outdated* models).

The race this closes: a run reads the Customer Model from the metadata store, and a
model change alters the warehouse, then saves the model in the store.  A run that read
the model just before the save (a queued run claimed at that instant, say) would add the
old column back and fill it; a run that opened the warehouse just before the change
would write its next batches with the old column names.  Hence, for every engine:

- `current` (each opening of the tables, a run's included): a model whose fingerprint
  is outdated alters nothing (its columns are not added back), and the caller learns
  so; otherwise the caller gets the generation its tables are at.
- `record` (a model change, first in its transaction): takes the row (on PostgreSQL a
  row lock: a change waits for the writes that read the row before it, and they wait
  for it), raises the generation for a rename or drop, and marks the replaced model
  outdated (the new model is current: a drop undone by an add is not outdated).
- `check` (first after the ownership fence in every write with rows): the generation
  must be the one the run's rows were shaped under, else `ModelChanged` and nothing of
  the batch commits.  On PostgreSQL the read locks the row (``FOR SHARE``) until the
  write commits.  DuckDB waits for no lock: there a change waits for the transactions
  under way on the file, and holds new ones back, by the file's guard (`duckdb_guard`).

Adding a property raises nothing: a run's rows leave the new column empty, as they
would have had the run started a moment before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from headwater.adapters.warehouse import sql
from headwater.adapters.warehouse.ownership import Execute, Placeholder
from headwater.kernel.errors import TransientError
from headwater.kernel.model import Column

TABLE = "model_state"


class ModelChanged(TransientError):
    """A rename or drop of Customer Model properties changed the tables after the run
    read the model: its rows were not written (retrying reads the model anew)."""


@dataclass(frozen=True)
class ModelState:
    """Where the tables stand for one model: the generation they are at, and whether
    that model was replaced by a rename or drop (then nothing was altered for it)."""

    generation: int
    outdated: bool


@dataclass(frozen=True)
class ModelChange:
    """A Customer Model change as the warehouse applies it, in one transaction."""

    before: Sequence[Column]  # the model replaced (outdated if renamed or dropped)
    after: Sequence[Column]  # the model saved next: current; its missing columns added
    renamed: Sequence[tuple[str, str]] = ()  # (old column, new column)
    dropped: Sequence[str] = ()

    @property
    def destructive(self) -> bool:
        return bool(self.renamed or self.dropped)


def fingerprint(columns: Sequence[Column]) -> str:
    """The model as the tables see it: its column names and types, in any order."""
    pairs = sorted((c.name, c.type.value) for c in columns)
    return hashlib.sha256(orjson.dumps(pairs)).hexdigest()[:32]


def current(
    execute: Execute, schema: str, ph: Placeholder, columns: Sequence[Column], lock: str
) -> ModelState:
    """The state of the tables for the model `columns` (in the caller's transaction,
    which has created the tables); `lock` is the engine's locking-read clause."""
    _ensure_row(execute, schema, ph)
    generation, outdated = _read(execute, schema, lock)
    return ModelState(generation, fingerprint(columns) in outdated)


def record(execute: Execute, schema: str, ph: Placeholder, change: ModelChange) -> ModelState:
    """Record `change` (first in its transaction: see the module docstring); the state
    of the tables for `change.after`."""
    _ensure_row(execute, schema, ph)
    s = f"{sql.quote(schema)}.{TABLE}"
    # An UPDATE first: on PostgreSQL it takes the row before anything else is read.
    execute(f"UPDATE {s} SET changed_at = {ph('n')} WHERE id = 1", {"n": datetime.now(UTC)})
    generation, outdated = _read(execute, schema, "")
    after = fingerprint(change.after)
    if change.destructive:
        generation += 1
        outdated = [*dict.fromkeys([*outdated, fingerprint(change.before)])]
    outdated = [f for f in outdated if f != after]
    execute(
        f"UPDATE {s} SET generation = {ph('g')}, outdated = {ph('o')} WHERE id = 1",
        {"g": generation, "o": orjson.dumps(outdated).decode()},
    )
    return ModelState(generation, False)


def check(execute: Execute, schema: str, generation: int, lock: str) -> None:
    """Refuse (`ModelChanged`) a write whose rows were shaped under `generation` when
    a rename or drop has changed the tables since (see the module docstring)."""
    found = execute(f"SELECT generation FROM {sql.quote(schema)}.{TABLE}{lock}", {})
    if (int(found[0][0]) if found else 0) != generation:
        raise ModelChanged(
            "the Customer Model changed (a property renamed or dropped) while this run was "
            "importing: its batch was not written (the batches before it were, and their "
            "values moved with their columns); a retry imports with the new model"
        )


def _ensure_row(execute: Execute, schema: str, ph: Placeholder) -> None:
    s = f"{sql.quote(schema)}.{TABLE}"
    if not execute(f"SELECT 1 FROM {s} WHERE id = 1", {}):
        execute(
            f"INSERT INTO {s} (id, generation, outdated, changed_at) "
            f"VALUES (1, 0, '[]', {ph('n')}) ON CONFLICT (id) DO NOTHING",
            {"n": datetime.now(UTC)},
        )


def _read(execute: Execute, schema: str, lock: str) -> tuple[int, list[str]]:
    rows = execute(f"SELECT generation, outdated FROM {sql.quote(schema)}.{TABLE}{lock}", {})
    if not rows:  # tables made before this table existed, not opened since
        return 0, []
    generation, outdated = rows[0]
    return int(generation), list(orjson.loads(outdated))
