"""The API's routes read JSON bodies with `kernel.json_text` (FastAPI's own reading is
Python's `json`, which takes NaN and lone surrogates): such a body is a 422 saying
where, like any malformed JSON, and nothing of it is stored."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from headwater.kernel import json_text


class _StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json_text.loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """`APIRouter(route_class=StrictJsonRoute)`: see the module docstring."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handle(_StrictJsonRequest(request.scope, request.receive))

        return route
