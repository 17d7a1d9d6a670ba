"""Fewer garbage collections while runs are live (one setting for the whole process)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations between young-generation garbage collections while a run is live.
#: A run allocates millions of short-lived dicts and strings but almost no reference
#: cycles; Python's default (700) collects thousands of times per 100,000 customers.
#: Measured on 200,000 customers: 12% less CPU, 15-20% more throughput, same peak RSS.
RUN_GC_THRESHOLD = 10_000
_gc_lock = threading.Lock()
_gc_runs = 0
_gc_saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the young-generation GC threshold while any run in this process is live."""
    global _gc_runs, _gc_saved
    with _gc_lock:
        if _gc_runs == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(RUN_GC_THRESHOLD, _gc_saved[0]), *_gc_saved[1:])
        _gc_runs += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_runs -= 1
            if _gc_runs == 0 and _gc_saved is not None:
                gc.set_threshold(*_gc_saved)
                _gc_saved = None
