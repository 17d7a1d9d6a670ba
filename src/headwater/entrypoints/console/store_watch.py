"""While the metadata store is away, one probe of it per serving process.

A live run stream (`routes.runs`) that finds the store away waits here for it to come
back instead of trying it again on its own: N pages left open on live runs would
otherwise make N connection attempts every `OUTAGE_POLL_SECONDS` against a store
already in trouble. The first stream to wait starts the probe, a task on the process's
event loop that tries the store (a connection, ``SELECT 1``) every
`OUTAGE_POLL_SECONDS`; once it answers, every waiting stream goes on.

A waiter cancelled (its client gone: the server cancels a streaming answer whose
client hung up) stops waiting; when no waiter is left the probe is cancelled too, so
nothing runs on between outages or after the last page is closed.
"""

from __future__ import annotations

import asyncio
from typing import cast

from sqlalchemy import Engine, text
from starlette.requests import Request

from headwater.adapters.store.database import store_error

#: While the metadata store is away, how often it is tried again (once per process).
OUTAGE_POLL_SECONDS = 1.0


class StoreWatch:
    """The probe of one serving process's store (`store_watch` finds the console's)."""

    def __init__(self, engine: Engine, every: float = OUTAGE_POLL_SECONDS) -> None:
        self._engine = engine
        self._every = every
        self._waiting = 0
        self._answered = asyncio.Event()
        self._probe: asyncio.Task[None] | None = None

    async def back(self) -> None:
        """Return once the store answers the probe (the first try `every` seconds after
        the probe starts; a waiter joining a running probe waits for its next try)."""
        if self._probe is None or self._probe.done():
            self._answered = asyncio.Event()
            self._probe = asyncio.get_running_loop().create_task(self._watch(self._answered))
        answered, probe = self._answered, self._probe
        self._waiting += 1
        try:
            await answered.wait()
        finally:
            self._waiting -= 1
            if not self._waiting and not answered.is_set():
                probe.cancel()  # no one waits: no more tries

    async def _watch(self, answered: asyncio.Event) -> None:
        while not answered.is_set():
            await asyncio.sleep(self._every)
            # In a thread (the driver blocks); a cancelled probe leaves the one try
            # under way to end by itself.
            if await asyncio.to_thread(self._answers):
                answered.set()

    def _answers(self) -> bool:
        """Whether the store answers. An error other than the store's absence (a bug's)
        counts as an answer: the streams meet it with their own reads and fail."""
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            return store_error(exc) is None
        return True


def store_watch(request: Request) -> StoreWatch:
    """The console's `StoreWatch` (one per console application, so per process)."""
    return cast(StoreWatch, request.app.state.store_watch)
