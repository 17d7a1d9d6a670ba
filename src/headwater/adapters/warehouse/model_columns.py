"""The Customer Model's columns in ``identities`` and ``profiles``: added, renamed and
dropped in one transaction, with the model generation (`model_state`).

The statements are the same on every SQL engine; `Tables` is one open transaction as an
engine runs it.  `SQLWarehouse.ensure_columns` and `change_model` call these.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from headwater.adapters.warehouse import model_state, sql
from headwater.adapters.warehouse.model_state import ModelChange, ModelState
from headwater.adapters.warehouse.ownership import Execute, Placeholder
from headwater.adapters.warehouse.staging import retyped_columns
from headwater.kernel.errors import NotFound
from headwater.kernel.model import Column

TABLES = ("identities", "profiles")


@dataclass(frozen=True)
class Tables:
    """One open transaction, as an engine runs statements and lists a table's columns."""

    execute: Execute
    columns_of: Callable[[str], list[tuple[str, str]]]  # (name, catalogue type), in order
    types: sql.TypeMapper
    schema: str
    ph: Placeholder
    lock: str  # the engine's locking-read clause for the model row (`model_state`)


@dataclass(frozen=True)
class Ensured:
    state: ModelState
    #: Why each retyped column's values cannot be written (`retyped_columns`); None:
    #: not looked at (the model was outdated, nothing was altered).
    retyped: dict[str, str] | None


def check_names(change: ModelChange) -> None:
    renamed = [name for pair in change.renamed for name in pair]
    for name in (*renamed, *change.dropped, *(c.name for c in change.after)):
        sql.check_model_column(name)


def ensure(t: Tables, columns: Sequence[Column], *, alter: bool) -> Ensured | None:
    """The tables for the model `columns` (created by the caller): its missing columns
    added, unless that model is outdated.  With `alter` False nothing is added: None
    when something would be (the caller then calls again with `alter`)."""
    state = model_state.current(t.execute, t.schema, t.ph, columns, t.lock)
    if state.outdated:  # an outdated model's columns are not added back
        return Ensured(state, None)
    if not alter:
        for table in TABLES:
            have = {name for name, _ in t.columns_of(table)}
            if any(col.name not in have for col in columns):
                return None
    return Ensured(state, _add(t, columns))


def change(t: Tables, change: ModelChange) -> Ensured:
    """Apply `change` (the tables created by the caller), the model row first."""
    state = model_state.record(t.execute, t.schema, t.ph, change)
    for table in TABLES:
        have = {name for name, _ in t.columns_of(table)}
        for old, new in change.renamed:
            if old in have:  # else renamed already (a change redone): nothing to do
                t.execute(sql.rename_column(t.schema, table, old, new), {})
            elif new not in have:
                raise NotFound(f"column {old!r} does not exist in {t.schema}.{table}")
        for name in change.dropped:
            t.execute(sql.drop_column(t.schema, table, name), {})
    return Ensured(state, _add(t, change.after))


def _add(t: Tables, columns: Sequence[Column]) -> dict[str, str]:
    """Add the missing `columns` to both tables; the retyped ones (`retyped_columns`)."""
    retyped: dict[str, str] = {}
    for table in TABLES:
        have = dict(t.columns_of(table))
        for col in columns:
            if col.name not in have:
                t.execute(sql.add_column(t.types, t.schema, table, col), {})
        if table == "identities":
            retyped = retyped_columns(t.types, have, columns)
    return retyped
