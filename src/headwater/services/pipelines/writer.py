"""Warehouse writes on a background thread, so reading/transforming and writing overlap.

Batches commit in submission order.  A batch's `after_commit` callback runs only after
its write committed — this is where cursors advance (state rule 1).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from headwater.adapters.warehouse.contract import Warehouse, WriteBatch, WriteResult


@dataclass
class _Job:
    batch: WriteBatch
    after_commit: Callable[[WriteResult], None] | None


class Writer:
    def __init__(self, warehouse: Warehouse, depth: int = 2) -> None:
        self._warehouse = warehouse
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="headwater-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if self._error is not None:
                continue  # drain: nothing after a failed batch may commit
            try:
                result = self._warehouse.write(job.batch)
                if job.after_commit is not None:
                    job.after_commit(result)
            except BaseException as exc:
                self._error = exc

    def submit(
        self, batch: WriteBatch, after_commit: Callable[[WriteResult], None] | None = None
    ) -> None:
        self._raise_if_failed()
        self._jobs.put(_Job(batch, after_commit))

    def finish(self) -> None:
        """Wait for every submitted batch; re-raise the first write failure."""
        self._jobs.put(None)
        self._thread.join()
        self._raise_if_failed()

    def abort(self) -> None:
        """Stop after the batch in progress without raising (used when the run fails)."""
        if self._error is None:
            self._error = RuntimeError("aborted")
        self._jobs.put(None)
        self._thread.join()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error
