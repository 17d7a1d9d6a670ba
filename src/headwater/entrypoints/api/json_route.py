"""The API's routes read JSON bodies with `kernel.json_text` (FastAPI's own reading is
Python's `json`, which takes NaN and lone surrogates): such a body is a 422 saying
where, like any malformed JSON, and nothing of it is stored.  So is a body nested
too deeply to read (thousands of arrays in arrays overflow the interpreter's stack): it
was a 400 saying only that the body could not be parsed."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from headwater.kernel import json_text


def _deepest(text: str) -> tuple[int, int]:
    """How deep objects and arrays nest in `text` (JSON), and where that depth is
    first reached (a character offset)."""
    depth = deepest = at = 0
    quoted = escaped = False
    for i, ch in enumerate(text):
        if quoted:
            escaped, quoted = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            quoted = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest, at = depth, i
        elif ch in "]}":
            depth -= 1
    return deepest, at


def _loads(raw: bytes) -> Any:
    try:
        return json_text.loads(raw)
    except RecursionError:
        text = raw.decode("utf-8", "replace")
        depth, at = _deepest(text)
        why = f"objects and arrays nested {depth} levels deep, too deep to read"
        raise json.JSONDecodeError(why, text, at) from None


class _StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = _loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """`APIRouter(route_class=StrictJsonRoute)`: see the module docstring."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handle(_StrictJsonRequest(request.scope, request.receive))

        return route
