"""Refused deliveries in a connection's webhook status, on both stores: counted in
memory and written in one statement however many came, tied to the secret that judged
them (a new secret starts again at zero, and counts judged before it are dropped), with
a short reason that never echoes the body or a secret."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import event
from tests.services.conftest import connect

from headwater.kernel.clock import SystemClock
from headwater.kernel.entities import utcnow
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.sandbox.webhooks import sign
from headwater.services.app import App
from headwater.services.webhooks import endpoints
from headwater.services.webhooks.receive import Refused, check, receive
from headwater.services.webhooks.refusals import RefusalCounter

SECRET = "whsec_refusals_test_secret"
OTHER = "whsec_another_endpoints_secret"


@pytest.fixture(scope="module")
def empty_sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=0, seed=6) as running:
        yield running


def _refusal(app: App, connection_id: str, payload: bytes, header: str | None) -> Refused:
    with pytest.raises(Refused) as refused:
        check(app, connection_id, payload, header, SystemClock())
    return refused.value


def _updates_of_endpoints(app: App) -> list[str]:
    """Every UPDATE of webhook_endpoints the engine sends from now on."""
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE WEBHOOK_ENDPOINTS"):
            seen.append(statement)

    event.listen(app.engine, "before_cursor_execute", listen)
    return seen


def test_refusals_are_counted_in_one_write_and_reset_by_a_new_secret(
    app: App, empty_sandbox: RunningSandbox
) -> None:
    conn = connect(app, empty_sandbox)
    endpoints.set_secret(app, conn.id, SECRET)
    body = orjson.dumps({"id": "evt_1", "object": "event", "type": "customer.updated"})
    now = int(datetime.now(UTC).timestamp())
    shown = endpoints.show(app, conn.id).public()
    assert (shown["refused_deliveries"], shown["latest_delivery"], shown["warning"]) == (
        0,
        None,
        None,
    )

    counter = RefusalCounter(app.engine, interval=3600)  # written only when flushed here
    updates = _updates_of_endpoints(app)
    not_json = b"not json " + SECRET.encode()
    refusals = [
        _refusal(app, conn.id, body, sign(body, OTHER, now)),  # another endpoint's secret
        _refusal(app, conn.id, body, sign(body, SECRET, now - 3600)),  # an hour old
        _refusal(app, conn.id, not_json, sign(not_json, SECRET, now)),
        _refusal(app, conn.id, body, None),
    ]
    assert [r.reason for r in refusals] == [
        "signature does not match the stored secret",
        "timestamp outside tolerance",
        "not an event",
        "no Stripe-Signature header",
    ]
    at = utcnow()
    for i in range(200):  # a flood, then the last one says why
        r = refusals[i % len(refusals)] if i < 199 else refusals[0]
        counter.add(r.connection_id, r.since, r.reason, at + timedelta(microseconds=i))
    assert updates == []  # nothing written per refusal
    counter.flush()
    assert len(updates) == 1
    shown = endpoints.show(app, conn.id).public()
    assert shown["refused_deliveries"] == 200
    assert shown["last_refusal"] == "signature does not match the stored secret"
    assert shown["last_refused_at"] == (at + timedelta(microseconds=199)).isoformat()
    assert shown["latest_delivery"] == "refused"
    assert "deliveries are refused (200 since the secret was stored" in shown["warning"]
    assert "store the endpoint's own" in shown["warning"]
    assert SECRET not in str(shown)
    assert OTHER not in str(shown)
    assert "not json" not in str(shown)

    # A counted refusal judged with the old secret, written after a new one is stored:
    # dropped; the new secret starts at zero.
    counter.add(conn.id, refusals[0].since, refusals[0].reason, utcnow())
    endpoints.set_secret(app, conn.id, OTHER)
    counter.close()
    shown = endpoints.show(app, conn.id).public()
    assert (shown["refused_deliveries"], shown["last_refused_at"], shown["last_refusal"]) == (
        0,
        None,
        None,
    )
    assert shown["warning"] is None

    # An accepted delivery after refusals: the status says the latest was accepted.
    counter = RefusalCounter(app.engine, interval=3600)
    late = _refusal(app, conn.id, body, sign(body, SECRET, now))
    counter.add(late.connection_id, late.since, late.reason, utcnow())
    counter.flush()
    assert endpoints.show(app, conn.id).public()["latest_delivery"] == "refused"
    signed = sign(body, OTHER, int(datetime.now(UTC).timestamp()))
    receive(app, conn.id, body, signed, SystemClock())
    shown = endpoints.show(app, conn.id).public()
    assert shown["refused_deliveries"] == 1
    assert shown["latest_delivery"] == "accepted"
    assert shown["warning"] is None


def test_the_timer_writes_what_was_counted_within_its_interval(
    app: App, empty_sandbox: RunningSandbox
) -> None:
    conn = connect(app, empty_sandbox)
    endpoints.set_secret(app, conn.id, SECRET)
    since = endpoints.show(app, conn.id).endpoint
    assert since is not None
    counter = RefusalCounter(app.engine, interval=0.2)
    try:
        for _ in range(5):
            counter.add(conn.id, since.created_at, "not an event", utcnow())
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while endpoints.show(app, conn.id).public()["refused_deliveries"] != 5:
            assert datetime.now(UTC) < deadline, "the timer never wrote the counts"
            time.sleep(0.05)
    finally:
        counter.close()
    # What is counted when the serving process stops is written by `close`.
    stopping = RefusalCounter(app.engine, interval=3600)
    stopping.add(conn.id, since.created_at, "not an event", utcnow())
    stopping.close()
    assert endpoints.show(app, conn.id).public()["refused_deliveries"] == 6
