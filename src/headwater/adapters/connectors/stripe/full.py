"""Parallel full read of customers over adaptive `created` windows."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from headwater.adapters.connectors.stripe.http import Cancelled, StripeHTTP
from headwater.adapters.connectors.stripe.pagination import Cursor, parse_list
from headwater.adapters.connectors.stripe.windows import Window, plan_window
from headwater.kernel.records import Record

PATH = "/v1/customers"
_DONE = object()
_POLL = 0.05


class _Run:
    """One parallel read: a task queue of windows, a bounded queue of pages."""

    def __init__(self, http: StripeHTTP, page_size: int, workers: int) -> None:
        self.http = http
        self.page_size = page_size
        self.workers = workers
        self.tasks: queue.Queue[Window | None] = queue.Queue()
        # Bounded: a slow consumer blocks the readers instead of filling memory.
        self.pages: queue.Queue[object] = queue.Queue(maxsize=2 * workers)
        self.stop = threading.Event()  # workers must cease
        self.closed = threading.Event()  # the consumer is gone
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._pending = 0

    def submit(self, window: Window) -> None:
        with self._lock:
            self._pending += 1
        self.tasks.put(window)

    def work(self) -> None:
        while not self.stop.is_set():
            try:
                window = self.tasks.get(timeout=_POLL)
            except queue.Empty:
                continue
            if window is None:
                return
            try:
                self._read(window)
            except Cancelled:
                return
            except BaseException as exc:  # handed to the consumer, never lost
                self._fail(exc)
                return
            self._finished_one()

    def _read(self, window: Window) -> None:
        params = {"limit": self.page_size, **window.params()}
        reply = self.http.get(PATH, params, self.stop)
        data, has_more = parse_list(reply.body, f"GET {PATH}")
        plan = plan_window(window, data, has_more)
        for child in plan.children:
            self.submit(child)
        if plan.emit:
            self._emit(plan.emit)
        if not plan.sequential:
            return
        cursor = Cursor("starting_after")
        cursor.advance(data, has_more)
        while not cursor.finished:
            reply = self.http.get(PATH, {**params, **cursor.params()}, self.stop)
            data, has_more = parse_list(reply.body, f"GET {PATH}")
            if data:
                self._emit(data)
            cursor.advance(data, has_more)

    def _emit(self, page: list[Record]) -> None:
        while True:
            if self.stop.is_set():
                raise Cancelled
            try:
                self.pages.put(page, timeout=_POLL)
                return
            except queue.Full:
                continue

    def _deliver(self, item: object) -> None:
        while not self.closed.is_set():
            try:
                self.pages.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            first = self.error is None
            if first:
                self.error = exc
        self.stop.set()
        if first:
            self._deliver(exc)

    def _finished_one(self) -> None:
        with self._lock:
            self._pending -= 1
            done = self._pending == 0
        if done:
            for _ in range(self.workers):
                self.tasks.put(None)
            self._deliver(_DONE)


def read_windows(
    http: StripeHTTP, root: Window, *, page_size: int = 100, workers: int = 4
) -> Iterator[list[Record]]:
    """Yield every customer in `root` exactly once, in pages, reading in parallel."""
    run = _Run(http, page_size, workers)
    run.submit(root)
    threads = [
        threading.Thread(target=run.work, name=f"stripe-read-{i}", daemon=True)
        for i in range(workers)
    ]
    for thread in threads:
        thread.start()
    try:
        while True:
            item = run.pages.get()
            if run.error is not None:
                raise run.error
            if item is _DONE:
                return
            assert isinstance(item, list)
            yield item
    finally:
        run.stop.set()
        run.closed.set()
        for thread in threads:
            thread.join(timeout=5)
