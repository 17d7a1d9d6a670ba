"""Warehouse writes on a background thread, so reading/transforming and writing overlap.

Concurrency boundary: the writer thread ("headwater-writer") only calls
`warehouse.write`, one batch at a time in submission order, and puts each committed
result on a results queue.  Everything that follows a commit — counters, progress,
saving a position (state rule 1), the store — happens on the thread that owns the run
(the engine's), which drains the results queue when it next calls `submit` and at
`finish`.  A batch's `after_commit` callback therefore runs on the engine's thread,
after its write committed and before any later batch is handed over.

After a failed write nothing more commits: later batches are drained unwritten, and
the failure is raised on the engine's thread at its next `submit` or `finish`.  `abort`
(the engine stops for any reason) still runs, on the engine's thread, the callbacks of
the batches that committed, so the counters tell what landed.
`submit` is also the run's batch boundary: when the run was asked to stop (`RunStop`),
it raises `RunStopped` instead of handing over another batch (`check`, called between
pages, does the same without a batch, so that a stop need not wait for a batch to
fill); the writer thread checks
the same before each write, so a batch handed over before a stop request (or before a
pause that outlasted the lease) is not written after it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from headwater.adapters.store.database import describe_error
from headwater.adapters.warehouse.contract import Warehouse, WriteBatch, WriteResult
from headwater.kernel.errors import HeadwaterError
from headwater.services.pipelines.lease import RunStop
from headwater.services.runs.logcontext import in_this_context

log = logging.getLogger(__name__)

AfterCommit = Callable[[WriteResult], None]


class RunStopped(HeadwaterError):
    """The run was asked to stop (cancelled, or it lost its lease) at a batch boundary."""


@dataclass
class _Job:
    batch: WriteBatch
    after_commit: AfterCommit | None


#: Batches that may wait for the writer thread besides the one it writes.  One keeps
#: reading and writing overlapped; when the writer is the slower side (a first import at
#: zero latency into DuckDB, since the reading process's pipe was widened) every other
#: waiting batch is only held: at 2, a million customers held the run's process at
#: 300-302 MB while reading, at 1 at 292-293 MB, in the same time (30.2-31.0 s).
DEPTH = 1


class Writer:
    def __init__(
        self, warehouse: Warehouse, depth: int = DEPTH, stop: RunStop | None = None
    ) -> None:
        self._warehouse = warehouse
        self._stop = stop
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=depth)
        self._results: queue.Queue[tuple[_Job, WriteResult]] = queue.Queue()
        self._failed = threading.Event()
        self._error: BaseException | None = None  # written before `_failed` is set
        self._thread = threading.Thread(
            target=in_this_context(self._loop), name="headwater-writer", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if self._failed.is_set():
                continue  # drain: nothing after a failed batch may commit
            if self._stop is not None and self._stop.is_set():
                # Asked to stop (or the lease lapsed while the process was stalled)
                # after this batch was handed over: it is not written either.
                self._error = RunStopped(self._stop.message)
                self._failed.set()
                continue
            try:
                result = self._warehouse.write(job.batch)
            except BaseException as exc:
                self._error = exc
                self._failed.set()
                continue
            self._results.put((job, result))

    def submit(self, batch: WriteBatch, after_commit: AfterCommit | None = None) -> None:
        """Hand a batch over (blocking while `depth` batches wait), after running the
        callbacks of batches that committed since the last call."""
        self._deliver()
        self._raise_if_failed()
        if self._stop is not None and self._stop.is_set():
            raise RunStopped(self._stop.message)
        self._jobs.put(_Job(batch, after_commit))

    def check(self) -> None:
        """A boundary between pages: raise `RunStopped` if the run was asked to stop.
        What was read since the last `submit` is dropped, as `submit` would drop it;
        a write batch can take far longer to fill than a page to arrive."""
        if self._stop is not None and self._stop.is_set():
            raise RunStopped(self._stop.message)

    def finish(self) -> None:
        """Wait for every submitted batch, run their callbacks; re-raise the first write
        failure (after the callbacks of the batches that committed before it)."""
        self._jobs.put(None)
        self._thread.join()
        self._deliver()
        self._raise_if_failed()

    def abort(self) -> None:
        """Stop after the batch in progress without raising (used when the run fails or
        stops): the batches that committed are still counted and their callbacks run
        (their positions may be saved: they committed); later batches are not written.
        A failing callback is logged, not raised (the run's own failure is the story),
        and the callbacks of the batches after it still run."""
        if self._error is None:
            self._error = RuntimeError("aborted")
        self._failed.set()
        self._jobs.put(None)
        self._thread.join()
        while True:
            try:
                job, result = self._results.get_nowait()
            except queue.Empty:
                return
            if job.after_commit is None:
                continue
            try:
                job.after_commit(result)
            except Exception as exc:  # the batches after it committed too: count them
                log.warning("after a committed batch, while stopping: %s", describe_error(exc))

    def _deliver(self) -> None:
        while True:
            try:
                job, result = self._results.get_nowait()
            except queue.Empty:
                return
            if job.after_commit is not None:
                job.after_commit(result)

    def _raise_if_failed(self) -> None:
        if self._failed.is_set() and self._error is not None:
            raise self._error
