"""The sandbox's HTTP surface: a raw ASGI app (no framework cost on the hot path)."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

from headwater.sandbox import control
from headwater.sandbox.config import API_VERSION, SandboxConfig, is_live
from headwater.sandbox.errors import ApiError, permission_denied, unauthenticated
from headwater.sandbox.faults import Faults
from headwater.sandbox.idempotency import IdempotencyKeys
from headwater.sandbox.latency import Latency
from headwater.sandbox.limits import Limits
from headwater.sandbox.routes import Match, Request, Response, route
from headwater.sandbox.service import Sandbox

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class SandboxApp:
    """Authenticates, rate-limits, injects faults, dispatches, waits and counts.

    Everything runs on the server's one event-loop thread; a request counts as in
    flight from its admission until its latency has passed.
    """

    def __init__(self, config: SandboxConfig, sandbox: Sandbox) -> None:
        self.config = config
        self.sandbox = sandbox
        self.knobs = config.knobs
        self.stats = sandbox.stats
        self.faults = Faults(config.knobs, config.seed)
        self.limits = Limits(config.knobs)
        self.latency = Latency(config.knobs, config.seed)
        self.idempotent = IdempotencyKeys(sandbox.clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request = Request(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b""),
            body=body,
            headers=headers,
            request_id="req_" + base64.b32encode(os.urandom(10)).decode().lower()[:14],
        )
        response = await self.handle(request)
        await self._send(send, request, response)

    async def handle(self, request: Request) -> Response:
        key = _api_key(request.headers.get("authorization", ""))
        permissions = self.config.keys.get(key or "")
        if request.path.startswith("/_sandbox/"):
            if permissions is None:
                return Response.error(unauthenticated(key))
            return control.handle(self, request)
        match = route(request.method, request.path)
        admitted = time.time()
        if permissions is None or key is None:
            response = Response.error(unauthenticated(key))
        else:
            refused = self.limits.admit(key, is_live(key), match.name)
            if refused is None:
                self.stats.peak_in_flight = max(
                    self.stats.peak_in_flight, self.limits.in_flight[key]
                )
                try:
                    response = await self._answer(request, match, key, permissions)
                finally:
                    self.limits.release(key)
            else:
                response = Response.error(refused)
        reason = response.headers.get("stripe-rate-limited-reason")
        self.stats.record(match.name, response.status, reason, admitted)
        if self.knobs.malformed_rate and response.status < 400:
            broken = self.faults.malform(response.body)
            if broken is not None:
                self.stats.malformed += 1
                response = Response(response.status, broken)
        return response

    async def _answer(
        self, request: Request, match: Match, key: str, permissions: frozenset[str]
    ) -> Response:
        """Run an admitted request, then hold its answer for the sampled latency."""
        error = self.faults.injected_error() if self.knobs.faults_on else None
        if error is None and match.permission and match.permission not in permissions:
            error = permission_denied(key, match.permission, self.config.account)
        if error is None:
            try:
                response = self._run(request, match.call, is_live(key))
            except ApiError as raised:
                response = Response.error(raised)
        else:
            response = Response.error(error)
        delay = self.latency.seconds(response.objects)
        if delay > 0:
            await asyncio.sleep(delay)
        return response

    def _run(
        self, request: Request, call: Callable[[Sandbox, Request], Response], live: bool
    ) -> Response:
        token = request.headers.get("idempotency-key")
        if request.method != "POST" or not token:
            return call(self.sandbox, request)
        return self.idempotent.answer(live, token, request, lambda: call(self.sandbox, request))

    async def _send(self, send: Send, request: Request, response: Response) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(response.body)).encode()),
            (b"request-id", request.request_id.encode()),
            # The sandbox clock, not the wall clock: clients judge event age by it.
            (b"date", formatdate(self.sandbox.clock.now(), usegmt=True).encode()),
            (b"stripe-version", request.headers.get("stripe-version", API_VERSION).encode()),
        ]
        headers.extend((k.encode(), v.encode()) for k, v in response.headers.items())
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})


def _api_key(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip()).decode()
        except ValueError:
            return None
        return decoded.partition(":")[0] or None
    return None
