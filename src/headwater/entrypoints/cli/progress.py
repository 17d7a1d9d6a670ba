"""A live progress display for runs: counts and rates, on stderr."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.live import Live
from rich.text import Text

from headwater.entrypoints.cli.output import err
from headwater.kernel.records import Counters
from headwater.services.pipelines.recorder import Progress


def _line(c: Counters, elapsed: float) -> Text:
    rate = c.read / elapsed if elapsed > 0 else 0.0
    wrate = c.written / elapsed if elapsed > 0 else 0.0
    bar_len = 24
    done = min(bar_len, int(bar_len * c.written / c.read)) if c.read else 0
    bar = "█" * done + "░" * (bar_len - done)
    return Text(
        f"{bar}  read {c.read:,} ({rate:,.0f}/s) · written {c.written:,} ({wrate:,.0f}/s) · "
        f"filtered {c.filtered_out:,} · skipped {c.skipped:,} · failed {c.failed_total:,} · "
        f"deleted {c.deleted:,} · {elapsed:,.1f}s"
    )


@contextmanager
def live_progress(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    start = time.monotonic()
    with Live(_line(Counters(), 0.0), console=err, refresh_per_second=8, transient=False) as live:

        def update(counters: Counters) -> None:
            live.update(_line(counters, time.monotonic() - start))

        yield update
