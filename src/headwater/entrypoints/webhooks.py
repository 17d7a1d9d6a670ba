"""What `headwater serve` runs for Stripe webhooks besides the API's routes: the
follow-up `Dispatcher` thread (`headwater.services.webhooks.followups`), started and
stopped with the root application's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI

from headwater.services.app import App
from headwater.services.webhooks.followups import Dispatcher


def mount(root: FastAPI, app: App) -> None:
    """Run the dispatcher while `root` serves (wrapping its lifespan)."""
    inner = root.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        dispatcher = Dispatcher(app)
        dispatcher.start()
        try:
            async with inner(application) as state:
                yield state
        finally:
            dispatcher.stop()

    root.router.lifespan_context = cast(Any, lifespan)
