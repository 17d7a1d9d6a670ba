"""The Stripe HTTP client against a scripted HTTP server: retries and typed errors."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from urllib.parse import urlsplit

import psutil
import pytest
from tests.connectors.scripted_http import Scripted, ScriptedServer, error_body

from headwater.adapters.connectors.contract import PermissionMissing
from headwater.adapters.connectors.stripe import InvalidKey, StripeSettings
from headwater.adapters.connectors.stripe.errors import (
    RetriesExhausted,
    SourceUnreachable,
    StripeRequestFailed,
)
from headwater.adapters.connectors.stripe.http import Cancelled, StripeHTTP
from headwater.adapters.connectors.stripe.wire import WireError
from headwater.kernel.errors import mask_secret
from headwater.sandbox.testing import RunningSandbox, start_sandbox

KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
OK = Scripted(200, {"object": "list", "data": [], "has_more": False}, {"Request-Id": "req_ok"})


def client(url: str, sleeps: list[float], retries: int = 3) -> StripeHTTP:
    settings = StripeSettings(
        base_url=url, api_key=KEY, max_retries=retries, requests_per_second=1000.0, timeout=2.0
    )
    return StripeHTTP(settings, sleep=sleeps.append)


def test_every_request_pins_the_version_and_authenticates(scripted: ScriptedServer) -> None:
    scripted.script = [OK]
    http = client(scripted.url, [])
    reply = http.get("/v1/customers", {"limit": 100, "types[]": ["a", "b"]})
    http.close()
    assert reply.body["data"] == []
    assert reply.request_id == "req_ok"
    seen = scripted.seen[0]
    assert seen.headers["stripe-version"] == "2024-06-20"
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.query == {"limit": ["100"], "types[]": ["a", "b"]}
    assert reply.server_time is not None  # from the Date header


def test_5xx_and_429_are_retried_until_success(scripted: ScriptedServer) -> None:
    scripted.script = [
        Scripted(500, error_body("api_error", "boom")),
        Scripted(429, error_body("rate_limit_error", "slow down"), {"Retry-After": "2"}),
        Scripted(503, b"<html>bad gateway</html>"),
        OK,
    ]
    sleeps: list[float] = []
    http = client(scripted.url, sleeps)
    http.get("/v1/customers", {})
    assert http.api_calls == 4
    assert http.retries == 3
    assert len(sleeps) == 3
    assert sleeps[1] >= 2.0  # Retry-After honoured


def test_stripe_should_retry_false_stops_at_once(scripted: ScriptedServer) -> None:
    scripted.script = [
        Scripted(
            500, error_body("api_error", "idempotency clash"), {"Stripe-Should-Retry": "false"}
        )
    ]
    http = client(scripted.url, [])
    with pytest.raises(StripeRequestFailed, match="idempotency clash"):
        http.get("/v1/customers", {})
    assert http.api_calls == 1


def test_exhausted_retries_say_how_many_attempts_and_the_last_error(
    scripted: ScriptedServer,
) -> None:
    scripted.script = [
        Scripted(503, error_body("api_error", "try later"), {"Request-Id": "req_503"})
    ]
    http = client(scripted.url, [], retries=2)
    with pytest.raises(RetriesExhausted) as info:
        http.get("/v1/customers", {})
    error = info.value
    assert error.transient
    assert error.attempts == 3
    assert "gave up after 3 attempts" in error.message
    assert "HTTP 503 api_error: try later (Request-Id req_503)" in error.message


def test_malformed_json_is_retried_then_reported(scripted: ScriptedServer) -> None:
    scripted.script = [Scripted(200, b'{"data": [tru'), OK]
    http = client(scripted.url, [])
    assert http.get("/v1/customers", {}).body["has_more"] is False
    assert http.api_calls == 2

    scripted.script = [Scripted(200, b"[1, 2]")]
    with pytest.raises(RetriesExhausted, match="not a JSON object"):
        http.get("/v1/customers", {})


def test_401_is_an_invalid_key_without_the_key_in_the_message(scripted: ScriptedServer) -> None:
    message = f"Invalid API Key provided: {KEY}"
    scripted.script = [
        Scripted(401, error_body("invalid_request_error", message), {"Request-Id": "req_1"})
    ]
    http = client(scripted.url, [])
    with pytest.raises(InvalidKey) as info:
        http.get("/v1/customers", {})
    text = info.value.message
    assert KEY not in text
    assert f"Invalid API Key provided: {mask_secret(KEY)}" in text
    assert "invalid or revoked" in text
    assert "Request-Id req_1" in text
    assert http.api_calls == 1  # never retried


@pytest.mark.parametrize(
    ("status", "path", "permission"),
    [(403, "/v1/events", "Events: Read"), (400, "/v1/customers", "Customers: Read")],
)
def test_missing_permission_names_it(
    scripted: ScriptedServer, status: int, path: str, permission: str
) -> None:
    body = error_body(
        "invalid_request_error",
        "The provided key 'rk_test_***xyz' does not have the required permissions "
        "for this endpoint",
    )
    scripted.script = [Scripted(status, body)]
    http = client(scripted.url, [])
    with pytest.raises(PermissionMissing) as info:
        http.get(path, {})
    assert info.value.permission == permission
    assert f"'{permission}'" in info.value.message
    assert not info.value.transient


def test_other_4xx_fail_without_retry_and_carry_stripe_fields(scripted: ScriptedServer) -> None:
    scripted.script = [
        Scripted(
            400, error_body("invalid_request_error", "No such event: 'evt_1'", "resource_missing")
        )
    ]
    http = client(scripted.url, [])
    with pytest.raises(StripeRequestFailed) as info:
        http.get("/v1/events", {"ending_before": "evt_1"})
    assert info.value.failure.code == "resource_missing"
    assert "HTTP 400 invalid_request_error resource_missing: No such event" in info.value.message


def test_unreachable_host_is_transient_and_clear() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    http = client(f"http://127.0.0.1:{port}", sleeps, retries=2)
    with pytest.raises(SourceUnreachable) as info:
        http.get("/v1/customers", {})
    assert info.value.transient
    assert "Could not reach Stripe" in info.value.message
    assert "after 3 attempts" in info.value.message
    assert "Connection refused" in info.value.message
    assert len(sleeps) == 2


def test_closing_while_a_request_is_under_way_leaves_no_connection_open(
    sandbox: RunningSandbox,
) -> None:
    """`close` on one thread while a request is under way on another (a source closed
    while its first page is read ahead): the client was closed under the request, whose
    connection, opened after, stayed open until garbage-collected, and its
    ResourceWarning then failed whichever test was running (CI, 2026-12-01)."""
    port = urlsplit(sandbox.url).port
    me = psutil.Process()
    settings = StripeSettings(
        base_url=sandbox.url, api_key=sandbox.secret_key, requests_per_second=1000.0
    )
    rng = random.Random(3)
    for attempt in range(60):  # the code before failed at the first
        http = StripeHTTP(settings)
        stop = threading.Event()

        def ask(http: StripeHTTP = http, stop: threading.Event = stop) -> None:
            with contextlib.suppress(Cancelled, WireError, RuntimeError):
                http.get("/v1/customers", {"limit": 1}, stop)

        thread = threading.Thread(target=ask)
        thread.start()
        time.sleep(rng.uniform(0, 0.004))
        stop.set()
        http.close()
        thread.join(10)
        left = [c for c in me.net_connections("tcp") if c.raddr and c.raddr.port == port]
        assert left == [], f"attempt {attempt}: {left}"


def test_interrupt_frees_a_request_on_the_wire_and_drops_its_answer() -> None:
    """An interruptible client (a source's, whose run was asked to stop) does not wait
    for an answer on the wire: `get` raises `Cancelled` at once; the request goes on,
    counted once, and when it ends the closed client leaves no connection open.  A
    plain client (a reading process's, which is ended instead) gets its answer."""
    with start_sandbox(latency_ms=3000) as sb:
        port = urlsplit(sb.url).port
        settings = StripeSettings(base_url=sb.url, api_key=sb.secret_key)
        outcomes: dict[bool, tuple[str, float]] = {}
        for interruptible in (True, False):
            http = StripeHTTP(settings, interruptible=interruptible)

            def ask(http: StripeHTTP = http, interruptible: bool = interruptible) -> None:
                try:
                    http.get("/v1/customers", {"limit": 1})
                    outcomes[interruptible] = ("answered", time.monotonic())
                except Cancelled:
                    outcomes[interruptible] = ("cancelled", time.monotonic())

            thread = threading.Thread(target=ask)
            thread.start()
            time.sleep(0.5)  # on the wire: the sandbox answers after 3 s
            asked = time.monotonic()
            http.interrupt()
            thread.join(10)
            outcome, at = outcomes[interruptible]
            if interruptible:
                assert (outcome, at - asked < 0.5) == ("cancelled", True)
            else:
                assert (outcome, at - asked > 2.0) == ("answered", True)
            with pytest.raises(Cancelled):  # nothing is sent after an interrupt
                http.get("/v1/customers", {"limit": 1})
            assert http.api_calls == 1
            http.close()
        deadline = time.monotonic() + 10
        while True:  # the dropped request ends, then its connection is closed
            me = psutil.Process()
            left = [c for c in me.net_connections("tcp") if c.raddr and c.raddr.port == port]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert left == []
