"""Rate limits, injected faults, runtime control, webhooks and the state file."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import pytest
import stripe
from click.testing import CliRunner

from headwater.sandbox.command import sandbox as sandbox_command
from headwater.sandbox.testing import start_sandbox


def test_injected_429_and_500_reach_the_sdk_and_can_be_flipped(fresh, sdk) -> None:
    client = sdk(fresh)
    fresh.control(rate_limit_error_rate=1.0)
    with pytest.raises(stripe.RateLimitError) as limited:
        client.v1.customers.list()
    assert limited.value.http_status == 429
    assert limited.value.headers["stripe-should-retry"] == "true"
    fresh.control(rate_limit_error_rate=0.0, error_rate=1.0)
    with pytest.raises(stripe.APIError) as failed:
        client.v1.customers.list()
    assert failed.value.http_status in (500, 503)
    fresh.control(error_rate=0.0)
    assert client.v1.customers.list().data == []
    stats = fresh.stats()
    assert stats["rate_limited"] == 1
    assert stats["server_errors"] == 1
    assert stats["by_path"]["GET /v1/customers"] == 3


def test_failed_mutation_is_not_applied(fresh, sdk) -> None:
    fresh.control(error_rate=1.0)
    with pytest.raises(stripe.APIError):
        sdk(fresh).v1.customers.create({"name": "never"})
    fresh.control(error_rate=0.0)
    assert fresh.stats()["customers"] == 0


def test_malformed_bodies(fresh) -> None:
    fresh.control(malformed_rate=1.0)
    auth = {"Authorization": f"Bearer {fresh.secret_key}"}
    for _ in range(6):
        response = httpx.get(f"{fresh.url}/v1/customers", headers=auth)
        assert response.status_code == 200
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(response.content)
    assert fresh.stats()["malformed"] == 6


def test_latency_knob(fresh) -> None:
    auth = {"Authorization": f"Bearer {fresh.secret_key}"}
    fresh.control(latency_ms=300)
    start = time.perf_counter()
    httpx.get(f"{fresh.url}/v1/customers", headers=auth)
    assert time.perf_counter() - start >= 0.3
    assert fresh.knobs()["latency_ms"] == 300


def test_bad_knob_is_rejected(fresh) -> None:
    with pytest.raises(RuntimeError, match="error_rate"):
        fresh.control(error_rate=2.0)
    with pytest.raises(RuntimeError, match="unknown knob"):
        fresh.control(colour=1.0)


def test_rate_limits_test_and_live_mode() -> None:
    keys = {"sk_live_sandboxlive": "*"}
    with start_sandbox(keys=keys, rate_limit=5, live_rate_limit=40) as sandbox:
        with httpx.Client(base_url=sandbox.url) as http:

            def burst(key: str) -> list[httpx.Response]:
                headers = {"Authorization": f"Bearer {key}"}
                return [http.get("/v1/customers", headers=headers) for _ in range(30)]

            started = time.monotonic()
            test_answers = burst(sandbox.secret_key)
            elapsed = time.monotonic() - started
            live_answers = burst("sk_live_sandboxlive")
        limited = [r for r in test_answers if r.status_code == 429]
        # A one-second burst of 5, refilled at 5/s while the 30 requests ran.
        assert len(limited) >= 30 - 5 - int(5 * elapsed) - 1
        assert len(limited) <= 25
        assert limited[0].headers["stripe-should-retry"] == "true"
        assert limited[0].json()["error"]["code"] == "rate_limit"
        assert all(r.status_code == 200 for r in live_answers)  # live burst is 40


class _Receiver:
    """A webhook endpoint that fails its first delivery, then records the rest."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.attempts += 1
                ok = receiver.attempts > 1
                if ok:
                    receiver.received.append((body, self.headers["stripe-signature"]))
                self.send_response(200 if ok else 500)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    yield r
    r.close()


def test_webhook_is_signed_and_retried(fresh, sdk, receiver) -> None:
    secret = "whsec_sandboxtestsecret"
    endpoint = fresh.add_webhook(receiver.url, secret=secret, events=("customer.*",))
    assert endpoint["secret"] == secret
    customer = sdk(fresh).v1.customers.create({"email": "hook@example.com"})
    deadline = time.monotonic() + 10
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.attempts >= 2  # the first delivery failed and was retried
    payload, signature = receiver.received[0]
    event = stripe.Webhook.construct_event(payload, signature, secret)
    assert event.type == "customer.created"
    assert event.data.object.id == customer.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, signature, "whsec_wrong")
    # The sandbox counts a delivery once the receiver's answer is back, which can be
    # a moment after the receiver recorded the request.
    stats = fresh.stats()
    while stats["webhook_deliveries"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        stats = fresh.stats()
    assert stats["webhook_failures"] >= 1
    assert stats["webhook_deliveries"] == 1


def test_state_file_survives_a_restart(tmp_path: Path, sdk) -> None:
    state = str(tmp_path / "sandbox.state")
    with start_sandbox(customers=20, seed=5, state_file=state) as first:
        client = sdk(first)
        hook = first.add_webhook("http://127.0.0.1:9/first", events=("invoice.paid",))
        made = client.v1.customers.create({"name": "kept"})
        gone = client.v1.customers.list({"limit": 1}).data[0]
        client.v1.customers.delete(made.id)
        kept = client.v1.customers.create({"name": "also kept"})
        before = [c.id for c in client.v1.customers.list({"limit": 100}).data]
        events_before = [e.id for e in client.v1.events.list().data]
    assert gone.id == made.id
    with start_sandbox(customers=999, seed=5, state_file=state) as second:
        client = sdk(second)
        assert [c.id for c in client.v1.customers.list({"limit": 100}).data] == before
        assert [e.id for e in client.v1.events.list().data] == events_before
        assert client.v1.customers.retrieve(made.id).to_dict()["deleted"] is True
        # Ids made after the restart never repeat those made before it: the id
        # generators carry on from where the first run left them.
        for n in range(4):
            client.v1.customers.update(kept.id, {"name": f"renamed {n}"})
        events_after = [e.id for e in client.v1.events.list().data]
        assert len(events_after) == len(set(events_after)) == len(events_before) + 4
        assert not set(events_after[:4]) & set(events_before)
        newer = client.v1.events.list({"ending_before": events_before[0]}).data
        assert [e.id for e in newer] == events_after[:4]
        other = second.add_webhook("http://127.0.0.1:9/second", events=("invoice.paid",))
        assert other["id"] != hook["id"]
        assert other["secret"] != hook["secret"]
        listed = {e["id"]: e["url"] for e in second.webhooks()}
        assert listed == {hook["id"]: hook["url"], other["id"]: other["url"]}


def test_clock_refuses_advances_that_are_not_finite_or_too_far(fresh, sdk) -> None:
    auth = {"Authorization": f"Bearer {fresh.secret_key}"}
    before = fresh.now()
    clock = f"{fresh.url}/_sandbox/clock"
    answers = [
        httpx.post(clock, json={"advance_seconds": value}, headers=auth)
        for value in ("nan", "inf", "-inf", 1e300, "1e300", "ten", None, [1])
    ]
    answers += [
        httpx.post(clock, data={"advance_seconds": value}, headers=auth)
        for value in ("NaN", "1e999", "9" * 400)
    ]
    for response in answers:
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["param"] == "advance_seconds"
        assert "advance_seconds" in error["message"]
    # The clock did not move, and everything still answers (the Date header included).
    assert fresh.now() - before < 60
    assert sdk(fresh).v1.customers.create({"name": "after"}).created >= before
    assert fresh.advance_clock(3600) >= before + 3600


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e300", "-1"])
def test_clock_start_must_be_a_time_the_sandbox_can_hold(value: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))  # a start that got past the options stops here
        busy.listen(1)
        port = str(busy.getsockname()[1])
        result = CliRunner().invoke(sandbox_command, ["--port", port, "--clock-start", value])
    assert result.exit_code == 2
    assert "--clock-start" in result.output
    assert "Traceback" not in result.output
