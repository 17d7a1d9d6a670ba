"""A record that breaks a limit fails alone (`services/pipelines/bisection.py`, used by
`shaping.Shaper`): its batch is retried in parts, the records that pass are imported,
and only the culprit gets the limit as its error.  With the real runtimes, and with a
contract-shaped stand-in that counts the calls."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from headwater.adapters.store.database import open_engine
from headwater.adapters.transformations.contract import BatchFailed, Transformation
from headwater.adapters.transformations.javascript import compile_javascript
from headwater.adapters.transformations.python import compile_python
from headwater.kernel.entities import RunStatus
from headwater.kernel.model import DEFAULT_MODEL
from headwater.kernel.records import Outcome, Record
from headwater.services.pipelines.bisection import MAX_FAILED_RETRIES
from headwater.services.pipelines.definition import compile_predicate
from headwater.services.pipelines.lease import RunStop
from headwater.services.pipelines.recorder import Recorder
from headwater.services.pipelines.shaping import Shaper, TransformationBroken
from headwater.services.pipelines.writer import RunStopped

AT = datetime(2026, 1, 1, tzinfo=UTC)

JS = """
function transform(c) {
  const trap = c.metadata.trap;
  if (trap === "loop") { while (true) {} }
  if (trap === "memory") { const a = []; while (true) { a.push(new Array(1e6).fill(1.5)); } }
  return {email: c.email};
}
"""
PY = """
def transform(c):
    trap = c["metadata"].get("trap")
    if trap == "loop":
        while True:
            pass
    if trap == "memory":
        hoard = []
        while True:
            hoard.append(bytearray(10**7))
    return {"email": c["email"]}
"""


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    engine = open_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    yield Recorder(engine, "run_limits", None)
    engine.dispose()


def customer(n: int, trap: str | None = None) -> Record:
    metadata = {"trap": trap} if trap else {}
    return {"id": f"cus_{n}", "email": f"c{n}@x.io", "metadata": metadata}


def errors(recorder: Recorder) -> dict[str | None, str]:
    return {e.source_id: e.message for e in recorder._pending}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("runtime", "memory"),
    [
        ("JavaScript", "memory limit of 64 MB exceeded"),
        ("Python", "memory limit of 96 MB exceeded"),
    ],
)
def test_only_the_records_that_break_a_limit_fail_and_the_rest_are_imported(
    recorder: Recorder, runtime: str, memory: str
) -> None:
    if runtime == "JavaScript":
        transformation: Transformation = compile_javascript(JS, time_limit=1.0, memory_limit_mb=64)
    else:
        transformation = compile_python(PY, time_limit=1.0, memory_limit_mb=96)
    page = [customer(n, {3: "loop", 7: "memory"}.get(n)) for n in range(10)]
    try:
        s = Shaper(compile_predicate(None), transformation, DEFAULT_MODEL, recorder)
        out = s.shape(page, [AT] * 10)
        again = s.shape([customer(10), customer(11, "loop")], [AT] * 2)  # the run goes on
    finally:
        transformation.close()
    imported = [f"cus_{n}" for n in range(10) if n not in (3, 7)]
    assert [r.source_id for r in out.rows] == imported  # in the page's order, each once
    assert [r.values for r in out.rows] == [
        {"email": f"c{i.removeprefix('cus_')}@x.io"} for i in imported
    ]
    assert (out.failed, out.dropped) == (["cus_3", "cus_7"], [])
    assert [r.source_id for r in again.rows] == ["cus_10"]
    assert again.failed == ["cus_11"]
    alone = "(transforming this record on its own)"
    assert errors(recorder) == {
        "cus_3": f"{runtime} transformation: time limit of 1 s exceeded {alone}",
        "cus_7": f"{runtime} transformation: {memory} {alone}",
        "cus_11": f"{runtime} transformation: time limit of 1 s exceeded {alone}",
    }
    assert recorder.counters.failed["transform"] == 3
    assert recorder.counters.skipped == 0


class _Limits:
    """Fails any call holding a record marked ``bad`` (as a runtime does on a limit),
    else returns each record's email; counts its calls and the records it was sent."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def transform(self, records: Sequence[Record]) -> list[Outcome]:
        self.calls.append([r["id"] for r in records])
        if any(r.get("bad") for r in records):
            raise BatchFailed("time limit of 5 s exceeded", runtime="Test", batch=len(self.calls))
        return [{"email": r["email"]} for r in records]

    def logs(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


def page(size: int, bad: Sequence[int], start: int = 0) -> list[Record]:
    return [dict(customer(start + n), bad=n in bad) for n in range(size)]


def test_one_culprit_in_a_page_of_100_costs_seven_failing_retries(recorder: Recorder) -> None:
    limits = _Limits()
    s = Shaper(compile_predicate(None), limits, DEFAULT_MODEL, recorder)
    out = s.shape(page(100, [41]), [AT] * 100)
    assert out.failed == ["cus_41"]
    assert len(out.rows) == 99
    failing = [c for c in limits.calls if "cus_41" in c]
    assert [len(c) for c in failing] == [100, 50, 25, 12, 6, 3, 2, 1]  # one call per level
    assert failing[-1] == ["cus_41"]
    sent = [i for c in limits.calls if "cus_41" not in c for i in c]
    assert sorted(sent) == sorted(r.source_id for r in out.rows)  # each passed exactly once


def test_two_culprits_anywhere_are_found_and_a_third_stops_at_the_retry_budget(
    recorder: Recorder,
) -> None:
    limits = _Limits()
    s = Shaper(compile_predicate(None), limits, DEFAULT_MODEL, recorder)
    out = s.shape(page(100, [0, 99]), [AT] * 100)
    assert out.failed == ["cus_0", "cus_99"]
    assert len(out.rows) == 98
    limits.calls.clear()
    out = s.shape(page(100, [5, 45, 90], start=100), [AT] * 100)
    failed_calls = [c for c in limits.calls if {"cus_105", "cus_145", "cus_190"} & set(c)]
    assert len(failed_calls) == 1 + MAX_FAILED_RETRIES
    assert {"cus_105", "cus_145", "cus_190"} <= set(out.failed)
    assert 3 < len(out.failed) < 30  # the parts left when the budget ran out
    assert len(out.rows) + len(out.failed) == 100
    assert recorder.counters.failed["transform"] == 2 + len(out.failed)
    message = errors(recorder)[out.failed[-1]]
    assert message.startswith("Test: time limit of 5 s exceeded (transforming ")
    assert message.endswith(
        f"{MAX_FAILED_RETRIES} retries of its batch in smaller parts had failed)"
    )


def test_code_that_breaks_the_limit_on_every_record_stops_the_run_after_three_pages(
    recorder: Recorder,
) -> None:
    limits = _Limits()
    s = Shaper(compile_predicate(None), limits, DEFAULT_MODEL, recorder)
    everyone = list(range(100))
    first = s.shape(page(100, everyone), [AT] * 100)
    assert len(first.failed) == 100
    assert first.rows == []
    assert [len(c) for c in limits.calls] == [100, 50, 50, 25, 25, 25, 25]  # gave up at quarters
    message = errors(recorder)["cus_0"]
    assert message == (
        "Test: time limit of 5 s exceeded (transforming 25 records, this one among them; "
        "every part of its batch failed again)"
    )
    limits.calls.clear()
    s.shape(page(100, everyone, start=100), [AT] * 100)  # after a page that gave nothing:
    assert [len(c) for c in limits.calls] == [100, 50, 50]  # it gives up at the halves
    with pytest.raises(TransformationBroken, match="failed 3 batches in a row"):
        s.shape(page(100, everyone, start=200), [AT] * 100)
    assert recorder.counters.failed["transform"] == 300


def test_a_page_that_lets_one_record_through_breaks_the_streak(recorder: Recorder) -> None:
    s = Shaper(compile_predicate(None), _Limits(), DEFAULT_MODEL, recorder)
    for start in (0, 100):
        s.shape(page(100, range(100), start=start), [AT] * 100)
    out = s.shape(page(100, range(50), start=200), [AT] * 100)  # its second half passes
    assert [r.source_id for r in out.rows] == [f"cus_{n}" for n in range(250, 300)]
    for start in (300, 400):  # two more that give nothing: not three in a row
        s.shape(page(100, range(100), start=start), [AT] * 100)


class _CannotStart(_Limits):
    def transform(self, records: Sequence[Record]) -> list[Outcome]:
        self.calls.append([r["id"] for r in records])
        raise BatchFailed(
            "could not start a worker: EAGAIN", runtime="Test", records_at_fault=False
        )


def test_a_failure_that_is_not_the_records_doing_is_not_retried(recorder: Recorder) -> None:
    broken = _CannotStart()
    s = Shaper(compile_predicate(None), broken, DEFAULT_MODEL, recorder)
    out = s.shape(page(4, []), [AT] * 4)
    assert broken.calls == [["cus_0", "cus_1", "cus_2", "cus_3"]]
    assert out.failed == ["cus_0", "cus_1", "cus_2", "cus_3"]
    assert set(errors(recorder).values()) == {
        "Test: could not start a worker: EAGAIN (transforming 4 records, this one among "
        "them; not retried in parts: the records played no part)"
    }
    s.shape(page(1, [], start=4), [AT])  # alone, but not its doing either
    assert errors(recorder)["cus_4"] == (
        "Test: could not start a worker: EAGAIN (transforming this record; not retried "
        "in parts: the records played no part)"
    )


def test_a_stop_requested_while_a_page_is_retried_ends_it_with_nothing_recorded(
    recorder: Recorder,
) -> None:
    stop = RunStop()
    limits = _Limits()
    s = Shaper(compile_predicate(None), limits, DEFAULT_MODEL, recorder, stop=stop)
    stop.request(RunStatus.CANCELLED, "cancelled by the user")
    with pytest.raises(RunStopped, match="cancelled by the user"):
        s.shape(page(100, [7]), [AT] * 100)
    assert len(limits.calls) == 1  # the page's own call, no retry
    assert recorder._pending == []
    assert recorder.counters.failed["transform"] == 0
