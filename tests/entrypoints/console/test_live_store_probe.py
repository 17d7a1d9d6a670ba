"""Live run streams while the PostgreSQL metadata store refuses connections, counted at
the store's driver: how often a serving process tries the store.

Each open stream used to try the store again every `OUTAGE_POLL_SECONDS` on its own: N
pages left open made N connection attempts a second against a store already in
trouble. What must hold: while the store is away, one probe per process (about one
attempt per `OUTAGE_POLL_SECONDS`, however many streams wait); once it answers, every
stream goes on; streams closed by their clients meanwhile stop the probe, and nothing
is left running.

The console is driven in process, as an ASGI application (one event loop, as under
`headwater serve`), each stream a request whose client hangs up when told.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from tests.entrypoints.console.conftest import EMAIL, PASSWORD
from tests.entrypoints.test_serve_store_down import store_database, unreachable

from headwater.entrypoints.console import create_console
from headwater.entrypoints.console.store_watch import OUTAGE_POLL_SECONDS
from headwater.entrypoints.environment import settings_from_env
from headwater.sandbox.testing import start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.auth import sessions, users
from headwater.services.pipelines import runner, saving

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: Streams open at once (pages left open on a live run).
STREAMS = 6

#: How long the attempts are counted, the store away and every stream waiting.
WINDOW = 4.0


@dataclass
class Store:
    app: App  # the serving process's view of the store
    database: str  # to make unreachable
    cookie: str  # a signed-in session
    run_id: str  # a queued run (no worker: it stays live)
    attempts: list[float] = field(default_factory=list)  # when the driver tried to connect


@pytest.fixture
def store(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    with store_database() as database, start_sandbox(customers=5) as sandbox:
        monkeypatch.setenv("HEADWATER_DATABASE_URL", f"postgresql://root@127.0.0.1:5432/{database}")
        app = App.open(settings_from_env())
        try:
            users.add_user(app, EMAIL, PASSWORD)
            cookie, _ = sessions.sign_in(app, EMAIL, PASSWORD, address="127.0.0.1")
            conn = connections.add_stripe(app, "Live", sandbox.secret_key, sandbox.url, 50.0)
            run = runner.enqueue(app, saving.save_new(app, conn.id, "Watched").pipeline.id)
            found = Store(app, database, cookie, run.id)
            event.listen(
                app.engine, "do_connect", lambda *_: found.attempts.append(time.monotonic())
            )
            yield found
        finally:
            app.close()


class Stream:
    """One page's live stream: the events it got, and its client hanging up."""

    def __init__(self, console: Any, store: Store) -> None:
        self.body = ""
        self.gone = asyncio.Event()
        path = f"/runs/{store.run_id}/events"
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"view=page",
            "headers": [
                (b"host", b"testserver"),
                (b"cookie", f"{sessions.COOKIE}={store.cookie}".encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        self.task = asyncio.create_task(console(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        if not hasattr(self, "_asked"):
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"").decode()

    def events(self) -> list[str]:
        return [
            line.removeprefix("event: ")
            for line in self.body.splitlines()
            if line.startswith("event: ")
        ]

    async def close(self) -> None:
        self.gone.set()
        await asyncio.wait_for(self.task, 10)


async def _until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def _away(database: str) -> Any:
    """`unreachable(database)`, entered off the event loop; exit it likewise."""
    outage = unreachable(database)
    await asyncio.to_thread(outage.__enter__)
    return outage


def _nothing_runs_on() -> bool:
    """No task but the test's own: no stream, no probe."""
    return asyncio.all_tasks() == {asyncio.current_task()}


def _per_second(store: Store, start: float, end: float) -> float:
    return len([t for t in store.attempts if start <= t < end]) / (end - start)


async def _all_waiting(store: Store, streams: list[Stream]) -> Any:
    await _until(lambda: all(s.events() == ["progress"] for s in streams), 20, "progress")
    outage = await _away(store.database)
    await _until(lambda: all("outage" in s.events() for s in streams), 20, "outage said")
    return outage


async def _through_outage(store: Store) -> float:
    console = create_console(store.app)
    streams = [Stream(console, store) for _ in range(STREAMS)]
    outage = await _all_waiting(store, streams)
    start = time.monotonic()
    await asyncio.sleep(WINDOW)
    rate = _per_second(store, start, time.monotonic())
    await asyncio.to_thread(outage.__exit__, None, None, None)
    # Back: every stream goes on (its next progress sent, though unchanged).
    await _until(lambda: all(s.events()[-1] == "progress" for s in streams), 20, "resumed")
    for stream in streams:
        await stream.close()
    await _until(_nothing_runs_on, OUTAGE_POLL_SECONDS, "tasks left running")
    return rate


def test_one_probe_per_process_however_many_streams_wait(store: Store) -> None:
    rate = asyncio.run(_through_outage(store))
    # One stream's worth (a try every OUTAGE_POLL_SECONDS), not STREAMS times it.
    assert rate <= 1.5 / OUTAGE_POLL_SECONDS, f"{rate:.1f} store attempts a second"


async def _hung_up_during_outage(store: Store) -> tuple[float, float]:
    console = create_console(store.app)
    streams = [Stream(console, store) for _ in range(STREAMS)]
    outage = await _all_waiting(store, streams)
    try:
        await asyncio.sleep(2 * OUTAGE_POLL_SECONDS)
        for stream in streams[1:]:  # one page stays: the probe goes on for it
            await stream.close()
        start = time.monotonic()
        await asyncio.sleep(3 * OUTAGE_POLL_SECONDS)
        one_left = _per_second(store, start, time.monotonic())
        await streams[0].close()
        await _until(_nothing_runs_on, OUTAGE_POLL_SECONDS, "tasks left running")
        start = time.monotonic()
        await asyncio.sleep(3 * OUTAGE_POLL_SECONDS)
        return one_left, _per_second(store, start, time.monotonic())
    finally:
        await asyncio.to_thread(outage.__exit__, None, None, None)


def test_streams_closed_during_an_outage_stop_the_probe(store: Store) -> None:
    one_left, none_left = asyncio.run(_hung_up_during_outage(store))
    assert 0 < one_left <= 1.5 / OUTAGE_POLL_SECONDS, one_left
    assert none_left == 0, none_left
