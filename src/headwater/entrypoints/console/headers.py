"""The headers every console answer carries: no page may be framed by another site
(clickjacking), scripts come from this site's own files only, and no page is kept in a
cache (the back/forward cache above all: a new API token must not come back from it).

A pure ASGI middleware, not Starlette's ``BaseHTTPMiddleware``: it adds headers to the
answer's start message and passes every body chunk on as it comes, so the run
progress's server-sent events still stream.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: On every answer, static files included. `script-src 'self'`: the pages load only
#: /static/dist/*.js, their <script> blocks are JSON data (never run), and htmx reads
#: hx-vals as JSON (no eval).
ALWAYS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "frame-ancestors 'none'; script-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

#: Static files (the bundle, the style sheets) hold no one's data and may be cached
#: (revalidated by their ETag); nothing else may.
CACHEABLE = "/static/"


class ConsoleHeaders:
    """Adds `ALWAYS`, and ``Cache-Control: no-store`` outside `CACHEABLE` unless the
    answer chose its own ``Cache-Control``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        cacheable = path.startswith(CACHEABLE)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS.items():
                    headers[name] = value
                if not cacheable and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
