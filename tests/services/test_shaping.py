"""Filter → transform → validate (`services/pipelines/shaping.py`): every record ends in
exactly one place (a row, dropped, failed, or a read error), counted under its step."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from headwater.adapters.store.database import open_engine
from headwater.adapters.transformations.contract import BatchFailed
from headwater.kernel.model import DEFAULT_MODEL
from headwater.kernel.records import Outcome, Record, TransformFailure
from headwater.services.pipelines.definition import compile_predicate, compile_transformation
from headwater.services.pipelines.recorder import Recorder
from headwater.services.pipelines.shaping import (
    MAX_CONSECUTIVE_BATCH_FAILURES,
    Shaper,
    TransformationBroken,
)

AT = datetime(2026, 1, 1, tzinfo=UTC)
ITALY = {"logical": "and", "conditions": [
    {"property": "address.country", "operator": "is", "values": ["IT"]}
]}  # fmt: skip


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    engine = open_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    yield Recorder(engine, "run_shaping", None)
    engine.dispose()


def failed(**steps: int) -> dict[str, int]:
    return {"read": 0, "transform": 0, "validate": 0, "write": 0, **steps}


def shaper(recorder: Recorder, mapping: dict[str, str], filter: Any = None) -> Shaper:
    transformation = compile_transformation({"kind": "mapping", "mapping": mapping}, DEFAULT_MODEL)
    return Shaper(compile_predicate(filter), transformation, DEFAULT_MODEL, recorder)


def customer(n: int, country: str = "IT", **extra: Any) -> Record:
    return {"id": f"cus_{n}", "email": f"c{n}@x.io", "address": {"country": country}, **extra}


def test_kept_records_become_typed_rows_and_the_others_are_dropped(recorder: Recorder) -> None:
    s = shaper(recorder, {"email": "email", "created_at": "created"}, ITALY)
    records = [customer(1, created=1_700_000_000), customer(2, "FR"), customer(3, created=0)]
    out = s.shape(records, [AT] * 3)
    assert [r.source_id for r in out.rows] == ["cus_1", "cus_3"]
    assert out.rows[0].values == {
        "email": "c1@x.io",
        "created_at": datetime.fromtimestamp(1_700_000_000, UTC),
    }
    assert out.rows[0].source_updated_at == AT
    assert out.dropped == ["cus_2"]
    assert out.failed == []
    assert recorder.counters.filtered_out == 1


def test_a_value_the_model_cannot_hold_is_a_validate_error_for_that_record_only(
    recorder: Recorder,
) -> None:
    s = shaper(recorder, {"email": "email", "created_at": "name"})
    out = s.shape([customer(1, name="not a date"), customer(2, name=None)], [AT, AT])
    assert [r.source_id for r in out.rows] == ["cus_2"]
    assert out.failed == ["cus_1"]
    assert recorder.counters.failed == failed(validate=1)
    [error] = recorder._pending
    assert (error.source_id, error.step.value) == ("cus_1", "validate")
    assert "created_at" in error.message


def test_a_record_without_a_string_id_is_a_read_error_and_nothing_else(recorder: Recorder) -> None:
    s = shaper(recorder, {"email": "email"})
    out = s.shape([{"email": "no-id@x.io"}, {"id": 7}, customer(1)], [AT] * 3)
    assert [r.source_id for r in out.rows] == ["cus_1"]
    assert (out.dropped, out.failed) == ([], [])
    assert recorder.counters.failed == failed(read=2)


class _Scripted:
    """A transformation whose batches fail or succeed as scripted (the contract's shape)."""

    def __init__(self, script: Sequence[bool]) -> None:
        self._script = list(script)

    def transform(self, records: Sequence[Record]) -> list[Outcome]:
        if not self._script.pop(0):
            raise BatchFailed("time limit of 1 s exceeded")
        return [None if r["id"] == "cus_2" else TransformFailure("boom") for r in records]

    def logs(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


def test_skips_and_per_record_failures_are_counted_apart(recorder: Recorder) -> None:
    s = Shaper(compile_predicate(None), _Scripted([True]), DEFAULT_MODEL, recorder)
    out = s.shape([customer(1), customer(2)], [AT, AT])
    assert (out.rows, out.dropped, out.failed) == ([], ["cus_2"], ["cus_1"])
    assert recorder.counters.skipped == 1
    assert recorder.counters.failed == failed(transform=1)


def test_whole_batch_failures_stop_the_run_only_when_consecutive(recorder: Recorder) -> None:
    fails = MAX_CONSECUTIVE_BATCH_FAILURES - 1
    script = [False] * fails + [True] + [False] * MAX_CONSECUTIVE_BATCH_FAILURES
    s = Shaper(compile_predicate(None), _Scripted(script), DEFAULT_MODEL, recorder)
    for _ in range(fails + 1):  # failures, then a success resets the count
        s.shape([customer(1)], [AT])
    for _ in range(MAX_CONSECUTIVE_BATCH_FAILURES - 1):
        assert s.shape([customer(1)], [AT]).failed == ["cus_1"]
    with pytest.raises(TransformationBroken, match="failed 3 batches in a row"):
        s.shape([customer(1)], [AT])
    assert recorder.counters.failed == failed(transform=fails + 1 + MAX_CONSECUTIVE_BATCH_FAILURES)
