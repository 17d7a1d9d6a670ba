"""Wires for `StripeHTTP` in tests (a Python function as Stripe, a recording wire), and
a forward proxy."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import httpx
from tests.connectors.scripted_http import Background, respond

from headwater.adapters.connectors.stripe.wire import Answer, Params, Wire, WireError

#: Stripe as a function of the request, as `httpx.MockTransport` takes it.
Handler = Callable[[httpx.Request], httpx.Response]


class HandlerWire:
    """Answers each GET with `handler` (an `httpx.TransportError` it raises is a
    request left unanswered), with no network between."""

    def __init__(self, handler: Handler, base_url: str = "http://stripe.test") -> None:
        self.handler = handler
        self.base_url = base_url

    def get(self, path: str, params: Params) -> Answer:
        request = httpx.Request("GET", self.base_url + path, params=params)
        try:
            response = self.handler(request)
        except httpx.TransportError as exc:
            raise WireError(f"{type(exc).__name__}: {exc}") from exc
        return Answer(response.status_code, response.headers, response.read())

    def close(self) -> None:
        pass


class Recording:
    """A real wire that remembers every request's query parameters."""

    def __init__(self, inner: Wire) -> None:
        self.inner = inner
        self.queries: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def get(self, path: str, params: Params) -> Answer:
        with self.lock:
            self.queries.append({k: str(v) for k, v in params.items()})
        return self.inner.get(path, params)

    def close(self) -> None:
        self.inner.close()


class ForwardProxy(Background):
    """A real HTTP forward proxy (plain HTTP targets, no CONNECT) that remembers each
    request line it forwarded and the ``Proxy-Authorization`` it came with."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy.seen.append((self.requestline, self.headers.get("Proxy-Authorization")))
                target = urlsplit(self.path)
                upstream = http.client.HTTPConnection(target.netloc, timeout=30)
                try:
                    headers = {
                        k: v for k, v in self.headers.items() if not k.lower().startswith("proxy-")
                    }
                    upstream.request(
                        "GET", self.path[len(f"http://{target.netloc}") :], headers=headers
                    )
                    answer = upstream.getresponse()
                    body = answer.read()
                finally:
                    upstream.close()
                hop = ("content-length", "connection", "transfer-encoding")
                kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in hop]
                respond(self, answer.status, kept, body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(Handler)
