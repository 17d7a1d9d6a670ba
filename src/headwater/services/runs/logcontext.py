"""Which run a log line belongs to.

A run's thread binds the run (`bound`); the threads the run starts (its lease keeper,
its warehouse writer) start in a copy of that context (`in_this_context`), so every line
they log carries the same run id and pipeline id.  `RunFields` is the logging filter
that copies them onto each record (``run_id``, ``pipeline_id``; None outside a run).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator

_run: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "headwater_run", default=None
)


@contextlib.contextmanager
def bound(run_id: str, pipeline_id: str) -> Iterator[None]:
    token = _run.set((run_id, pipeline_id))
    try:
        yield
    finally:
        _run.reset(token)


def in_this_context(target: Callable[[], None]) -> Callable[[], None]:
    """`target`, to run on another thread in a copy of the caller's context."""
    context = contextvars.copy_context()
    return lambda: context.run(target)


class RunFields(logging.Filter):
    """Adds ``run_id`` and ``pipeline_id`` to every record (None outside a run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _run.get()
        record.run_id, record.pipeline_id = current if current else (None, None)
        return True
