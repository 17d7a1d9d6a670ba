"""One shape for the ASGI middlewares that answer an exception the application under
them raised (`AnswerFailures`): the store away (`store_outage`), a bug (the API's 500).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class AnswerFailures:
    """ASGI middleware: an HTTP request whose application raised goes to `failed`, with
    whether its answer had started (then only the connection's end can tell the client);
    what `failed` returns answers the request, None answers nothing, and `failed` may
    raise the exception on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            answer = self.failed(exc, scope, started)
            if answer is not None:
                await answer(scope, receive, send)

    def failed(self, exc: Exception, scope: Scope, started: bool) -> ASGIApp | None:
        raise NotImplementedError
