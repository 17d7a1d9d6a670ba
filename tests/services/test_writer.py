"""The writer: batches commit in order on its thread; results come back to the caller's
thread; nothing commits after a failed batch; `submit` is the stop boundary."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from headwater.adapters.warehouse.contract import WriteBatch, WriteResult
from headwater.kernel.entities import RunStatus
from headwater.services.pipelines.lease import RunStop
from headwater.services.pipelines.writer import RunStopped, Writer


class ScriptedWarehouse:
    """Commits batches by recording them; fails the batch numbered `fail_at`."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.committed: list[str] = []
        self.threads: set[str] = set()
        self.release = threading.Event()
        self.release.set()

    def write(self, batch: WriteBatch) -> WriteResult:
        self.release.wait(10)
        self.threads.add(threading.current_thread().name)
        if batch.run_id == f"b{self.fail_at}":
            raise RuntimeError(f"warehouse refused {batch.run_id}")
        self.committed.append(batch.run_id)
        return WriteResult(inserted=1)


def batch(n: int) -> WriteBatch:
    return WriteBatch("pl", "conn", f"b{n}")


def test_after_a_failed_batch_nothing_more_commits_and_the_failure_is_raised() -> None:
    wh = ScriptedWarehouse(fail_at=2)
    wh.release.clear()  # let batches 1-4 queue up before any is written
    writer = Writer(wh, depth=4)  # type: ignore[arg-type]
    seen: list[int] = []
    for n in range(1, 5):
        writer.submit(batch(n), lambda _r, n=n: seen.append(n))
    wh.release.set()
    with pytest.raises(RuntimeError, match="warehouse refused b2"):
        writer.finish()
    assert wh.committed == ["b1"]  # batches 3 and 4 were drained, never written
    assert seen == [1]  # only the committed batch's callback ran
    with pytest.raises(RuntimeError, match="warehouse refused b2"):
        writer.submit(batch(5))
    assert wh.committed == ["b1"]


def test_callbacks_run_on_the_submitting_thread_in_order_after_their_commit() -> None:
    wh = ScriptedWarehouse()
    writer = Writer(wh)  # type: ignore[arg-type]
    ran: list[tuple[int, str, list[str]]] = []

    def after(n: int) -> Any:
        return lambda _r: ran.append((n, threading.current_thread().name, list(wh.committed)))

    for n in range(1, 6):
        writer.submit(batch(n), after(n))
    writer.finish()
    assert [n for n, _, _ in ran] == [1, 2, 3, 4, 5]
    me = threading.current_thread().name
    assert {name for _, name, _ in ran} == {me}
    assert wh.threads == {"headwater-writer"}
    for n, _, committed in ran:
        assert f"b{n}" in committed  # each callback ran after its own commit


def test_a_stop_request_is_honoured_at_the_next_submit_and_abort_counts_what_committed() -> None:
    wh = ScriptedWarehouse()
    stop = RunStop()
    writer = Writer(wh, stop=stop)  # type: ignore[arg-type]
    counted: list[int] = []
    writer.submit(batch(1), lambda _r: counted.append(1))
    deadline = time.monotonic() + 10
    while not wh.committed and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.request(RunStatus.CANCELLED, "cancelled on request")
    stop.request(RunStatus.FAILED, "a later request does not replace the first")
    with pytest.raises(RunStopped, match="cancelled on request"):
        writer.submit(batch(2))
    assert counted == [1]  # counted on this thread as the boundary was reached
    writer.abort()
    assert counted == [1]
    assert wh.committed == ["b1"]
    assert stop.status == RunStatus.CANCELLED


def test_abort_still_runs_the_callbacks_of_batches_that_committed() -> None:
    wh = ScriptedWarehouse()
    writer = Writer(wh)  # type: ignore[arg-type]
    counted: list[int] = []
    for n in (1, 2):
        writer.submit(batch(n), lambda _r, n=n: counted.append(n))
    deadline = time.monotonic() + 10
    while len(wh.committed) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counted == []  # nothing came back yet: no submit or finish since
    writer.abort()  # the engine stops (a failure elsewhere, a cancel, Ctrl-C)
    assert counted == [1, 2]


def test_abort_runs_every_committed_batchs_callback_though_one_of_them_fails() -> None:
    """A callback that failed while stopping (the store was locked as it saved a
    position's display copy) left the batches committed after it uncounted."""
    wh = ScriptedWarehouse()
    writer = Writer(wh, depth=4)  # type: ignore[arg-type]
    counted: list[int] = []

    def after(n: int) -> Any:
        def count(_r: WriteResult) -> None:
            if n == 1:
                raise RuntimeError("database is locked")
            counted.append(n)

        return count

    for n in (1, 2, 3):
        writer.submit(batch(n), after(n))
    deadline = time.monotonic() + 10
    while len(wh.committed) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.abort()
    assert wh.committed == ["b1", "b2", "b3"]
    assert counted == [2, 3]
