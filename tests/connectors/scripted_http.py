"""A real HTTP server that answers from a script, for exact protocol tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Scripted:
    """One canned response."""

    status: int = 200
    body: bytes | dict[str, Any] = b"{}"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class Background:
    """A real HTTP server on a free loopback port, serving from a thread of its own."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ScriptedServer(Background):
    """A real HTTP server answering from a script; the last entry repeats forever."""

    def __init__(self) -> None:
        self.script: list[Scripted] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                with server._lock:
                    server.seen.append(
                        Seen(
                            url.path,
                            parse_qs(url.query),
                            {k.lower(): v for k, v in self.headers.items()},
                        )
                    )
                    reply = server.script.pop(0) if len(server.script) > 1 else server.script[0]
                body = (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                respond(self, reply.status, reply.headers.items(), body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler)


def respond(
    handler: BaseHTTPRequestHandler,
    status: int,
    headers: Iterable[tuple[str, str]],
    body: bytes,
) -> None:
    """Answer `handler`'s request with `body`, its length set."""
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def error_body(type_: str, message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["code"] = code
    return {"error": error}
