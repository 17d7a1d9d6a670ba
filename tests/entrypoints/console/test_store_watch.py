"""`StoreWatch`, the one probe per serving process of a metadata store that is away,
over a SQLite store whose folder is missing (every connection fails as the store's
absence) until the test makes it: how many connections it tries, who it lets go, and
that it stops when no one waits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event

from headwater.entrypoints.console.store_watch import StoreWatch

EVERY = 0.05  # the probe's interval here (OUTAGE_POLL_SECONDS in the console)


def _counted(folder: Path) -> tuple[Engine, list[float]]:
    """An engine over a store in `folder` (missing: unreachable), and when it tried."""
    engine = create_engine(f"sqlite:///{folder / 'store.db'}")
    tries: list[float] = []
    event.listen(engine, "do_connect", lambda *_: tries.append(time.monotonic()))
    return engine, tries


def _others() -> list[asyncio.Task[object]]:
    """The tasks running but the test's own."""
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def _many_wait_then_back(folder: Path) -> tuple[int, list[bool]]:
    engine, tries = _counted(folder)
    watch = StoreWatch(engine, EVERY)
    waiters = [asyncio.create_task(watch.back()) for _ in range(20)]
    await asyncio.sleep(10 * EVERY)
    during = len(tries)
    still = [not w.done() for w in waiters]
    folder.mkdir()  # the store answers
    await asyncio.wait_for(asyncio.gather(*waiters), 2)
    await asyncio.sleep(0)
    assert not _others()  # the probe ended with the outage
    return during, still


def test_waiters_share_one_probe_and_all_go_on_once_the_store_answers(tmp_path: Path) -> None:
    during, still = asyncio.run(_many_wait_then_back(tmp_path / "missing"))
    assert all(still)  # no one let go while the store was away
    assert 3 <= during <= 11, during  # one try per EVERY (about 9 in 10), not 20 per


async def _all_leave(folder: Path) -> tuple[int, int]:
    engine, tries = _counted(folder)
    watch = StoreWatch(engine, EVERY)
    waiters = [asyncio.create_task(watch.back()) for _ in range(5)]
    await asyncio.sleep(4 * EVERY)
    for waiter in waiters[1:]:
        waiter.cancel()
    await asyncio.sleep(4 * EVERY)
    one_left = len(tries)
    waiters[0].cancel()
    await asyncio.wait(waiters)
    deadline = time.monotonic() + 1
    while _others() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert not _others()  # no probe left running
    stopped = len(tries)
    await asyncio.sleep(6 * EVERY)
    # A new outage starts a new probe, for its own waiter.
    again = asyncio.create_task(watch.back())
    folder.mkdir()
    await asyncio.wait_for(again, 2)
    return one_left, len(tries) - stopped


def test_the_probe_stops_when_its_last_waiter_leaves(tmp_path: Path) -> None:
    one_left, after = asyncio.run(_all_leave(tmp_path / "missing"))
    assert 2 <= one_left <= 9, one_left  # going on while one waiter is left
    assert after == 1, after  # none while no one waited; then the new probe's one try
