"""The model generation (`model_state`), on every engine: a write shaped under a model
that a rename or drop replaced never lands, and that model's columns are never added
back (the race of a run's claim with a Customer Model change, at the warehouse)."""

from __future__ import annotations

import threading
import time

import pytest

from headwater.adapters.warehouse import Warehouse
from headwater.adapters.warehouse.contract import ModelChange, ModelChanged

from .conftest import COLUMNS, Engine
from .test_conformance import batch, columns_of, row, write

RENAMED = tuple(
    type(c)("primary_email", "primary_email", c.type) if c.name == "email" else c for c in COLUMNS
)
RENAME = ModelChange(COLUMNS, RENAMED, renamed=[("email", "primary_email")])


def emails(warehouse: Warehouse) -> dict[str, object]:
    return {i["_source_id"]: i["primary_email"] for i in warehouse.identities()}


def test_a_run_that_read_the_replaced_model_writes_nothing_and_adds_nothing_back(
    warehouse: Warehouse, engine: Engine
) -> None:
    run = warehouse.ensure_columns(COLUMNS)  # the run opened its tables with the model
    assert not run.outdated
    write(warehouse, batch(row("cus_1", email="a"), model=run.generation))
    other = engine.open()  # the model change, on a connection of its own
    try:
        assert other.change_model(RENAME).generation == run.generation + 1
    finally:
        other.close()
    with pytest.raises(ModelChanged, match="renamed or dropped"):
        write(warehouse, batch(row("cus_2", email="b"), model=run.generation))
    # A run that read the old model after the columns changed, before it was saved:
    # its columns are not added back, and it learns its model is outdated.
    late = warehouse.ensure_columns(COLUMNS)
    assert late.outdated
    for table in ("identities", "profiles"):
        assert "email" not in columns_of(engine, warehouse, table)
    assert emails(warehouse) == {"cus_1": "a"}  # the earlier batch moved with the column
    # Deletes and positions name no column: a stale run may still save what it covered.
    assert write(warehouse, batch(deletes=["cus_9"], model=run.generation)).deleted == 0
    now = warehouse.ensure_columns(RENAMED)
    assert now == type(now)(run.generation + 1, outdated=False)
    write(warehouse, batch(row("cus_2", primary_email="b"), model=now.generation))
    assert emails(warehouse) == {"cus_1": "a", "cus_2": "b"}


def test_adding_keeps_the_generation_and_a_dropped_model_brought_back_is_current(
    warehouse: Warehouse,
) -> None:
    start = warehouse.ensure_columns(COLUMNS)
    plus = (*COLUMNS, type(COLUMNS[0])("plan", "plan", COLUMNS[0].type))
    added = warehouse.change_model(ModelChange(COLUMNS, plus))
    assert added.generation == start.generation  # a run's rows leave `plan` empty
    write(warehouse, batch(row("cus_1", email="a"), model=start.generation))
    dropped = warehouse.change_model(ModelChange(plus, COLUMNS, dropped=["plan"]))
    assert dropped.generation == start.generation + 1
    assert warehouse.ensure_columns(plus).outdated
    back = warehouse.change_model(ModelChange(COLUMNS, plus))  # `plan` added again
    assert not back.outdated
    assert not warehouse.ensure_columns(plus).outdated


def test_a_rename_waits_for_a_write_in_flight_whose_value_then_moves_with_the_column(
    warehouse: Warehouse, engine: Engine
) -> None:
    """PostgreSQL: the model row is read FOR SHARE by the write and updated first by the
    change.  DuckDB waits for no lock: a write committing over a rename failed, and
    DuckDB could not revert it ("database has been invalidated"); the file's guard
    (`duckdb_guard`) now keeps the rename out until the write ended."""
    generation = warehouse.ensure_columns(COLUMNS).generation
    renamer = engine.open()
    renamed = threading.Event()

    def rename() -> None:
        renamer.change_model(RENAME)
        renamed.set()

    thread = threading.Thread(target=rename)

    def in_flight() -> None:  # inside the write's transaction, after its merge
        thread.start()
        time.sleep(0.5)
        assert not renamed.is_set()  # waiting for this write to end

    writer = engine.open(after_merge=in_flight)
    try:
        writer.ensure_columns(COLUMNS)
        write(writer, batch(row("cus_1", email="kept"), model=generation))
        thread.join(10)
        assert renamed.is_set()
        assert emails(writer) == {"cus_1": "kept"}
        assert "email" not in columns_of(engine, writer, "identities")
        with pytest.raises(ModelChanged):  # the write after it
            write(writer, batch(row("cus_2", email="late"), model=generation))
        assert emails(writer) == {"cus_1": "kept"}
    finally:
        thread.join(10)
        writer.close()
        renamer.close()
