"""One delivery through the service: verified, deduplicated, runs asked for; the
payload is never stored; unknown connections look exactly like bad signatures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import select, text
from tests.services.conftest import MakePipeline, connect

from headwater.adapters.store import webhooks as store
from headwater.adapters.store.webhook_tables import webhook_endpoints, webhook_events
from headwater.kernel.clock import SystemClock
from headwater.kernel.errors import NotFound
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.sandbox.webhooks import sign
from headwater.services.app import App
from headwater.services.auth import workspaces
from headwater.services.webhooks import endpoints
from headwater.services.webhooks.receive import receive
from headwater.services.webhooks.signature import BadSignature

SECRET = "whsec_receive_test_secret"


@pytest.fixture(scope="module")
def empty_sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=0, seed=5) as running:
        yield running


def _event(event_id: str, kind: str = "customer.updated") -> bytes:
    customer = {"id": "cus_1", "object": "customer", "email": "secret-payload@example.com"}
    return orjson.dumps(
        {"id": event_id, "object": "event", "type": kind, "data": {"object": customer}}
    )


def _signed(payload: bytes, secret: str = SECRET) -> str:
    return sign(payload, secret, int(datetime.now(UTC).timestamp()))


def test_a_delivery_asks_for_runs_once_and_stores_no_payload(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    conn = connect(app, empty_sandbox)
    pipe = make_pipeline(conn, enabled=True, incremental=True)
    endpoints.set_secret(app, conn.id, SECRET)
    payload = _event("evt_a")
    first = receive(app, conn.id, payload, _signed(payload), SystemClock())
    assert (first.event_id, first.duplicate, first.pipelines) == ("evt_a", False, (pipe.id,))
    again = receive(app, conn.id, payload, _signed(payload), SystemClock())
    assert again.duplicate
    assert again.pipelines == ()
    other = _event("evt_b", "invoice.paid")  # verified, acknowledged, asks for nothing
    assert receive(app, conn.id, other, _signed(other), SystemClock()).pipelines == ()
    shown = endpoints.show(app, conn.id)
    assert shown.endpoint is not None
    assert shown.endpoint.last_delivery_at is not None
    with app.engine.connect() as c:
        rows = [tuple(r) for r in c.execute(select(webhook_events.c.event_id))]
        stored = " ".join(str(v) for r in c.execute(select(webhook_endpoints)) for v in r)
    assert sorted(rows) == [("evt_a",), ("evt_b",)]
    assert SECRET not in stored  # encrypted at rest, masked for display
    assert shown.public()["secret"] != SECRET
    assert "secret-payload" not in stored


def test_unknown_connections_no_secret_and_forgeries_are_all_refused_alike(
    app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    conn = connect(app, empty_sandbox)
    make_pipeline(conn, enabled=True, incremental=True)
    payload = _event("evt_c")
    with pytest.raises(BadSignature):  # the connection has no secret yet
        receive(app, conn.id, payload, _signed(payload), SystemClock())
    endpoints.set_secret(app, conn.id, SECRET)
    asked = store.pending_followups(app.engine)  # the catch-up of storing a secret
    for connection_id, header in [
        ("conn_doesnotexist", _signed(payload)),
        (conn.id, _signed(payload, "whsec_forged_by_someone")),
        (conn.id, sign(payload, SECRET, int(datetime.now(UTC).timestamp()) - 3600)),
        (conn.id, None),
    ]:
        with pytest.raises(BadSignature):
            receive(app, connection_id, payload, header, SystemClock())
    for body in (b"not json", b"[1,2]", b'{"type":"customer.created"}'):
        with pytest.raises(BadSignature):
            receive(app, conn.id, body, _signed(body), SystemClock())
    assert store.pending_followups(app.engine) == asked  # nothing refused asked for a run
    with app.engine.connect() as c:
        assert c.execute(text("select count(*) from webhook_events")).scalar() == 0


def test_the_secret_of_a_hand_made_endpoint_is_checked_and_scoped(
    app: App, empty_sandbox: RunningSandbox
) -> None:
    conn = connect(app, empty_sandbox)
    for bad in ("", "sk_test_notasecret", "whsec_", "whsec_with space"):
        with pytest.raises(Exception, match="signing secret") as caught:
            endpoints.set_secret(app, conn.id, bad)
        assert "whsec_with space" not in str(caught.value)
    shown = endpoints.set_secret(app, conn.id, SECRET, "https://hw.example.com/").public()
    assert shown["url"] == f"https://hw.example.com/api/v1/webhooks/stripe/{conn.id}"
    assert shown["secret"] not in (None, SECRET)
    other = app.in_workspace(workspaces.add_workspace(app, "other").id)
    with pytest.raises(NotFound):
        endpoints.show(other, conn.id)
    with pytest.raises(NotFound):
        endpoints.remove(other, conn.id)
    assert endpoints.remove(app, conn.id).endpoint is not None
    with pytest.raises(NotFound, match="no webhook endpoint"):
        endpoints.remove(app, conn.id)


def test_rolling_the_secret_keeps_the_last_delivery_and_takes_either_signature(
    app: App, empty_sandbox: RunningSandbox
) -> None:
    """Storing the rolled secret (README: roll it in the Dashboard, store the new one)
    reset the last delivery to none, so the webhook looked as if nothing had ever
    arrived; it is when the last verified delivery arrived, whatever secret signed it."""
    conn = connect(app, empty_sandbox)
    endpoints.set_secret(app, conn.id, SECRET)
    payload = _event("evt_before_roll")
    receive(app, conn.id, payload, _signed(payload), SystemClock())
    before = endpoints.show(app, conn.id).endpoint
    assert before is not None
    assert before.last_delivery_at is not None
    rolled = "whsec_rolled_secret_value"
    after = endpoints.set_secret(app, conn.id, rolled).endpoint
    assert after is not None
    assert after.secret_masked != before.secret_masked
    assert after.last_delivery_at == before.last_delivery_at
    # While Stripe rolls, it signs with both secrets (two v1): either one is enough.
    payload = _event("evt_while_rolling")
    now = int(datetime.now(UTC).timestamp())
    both = sign(payload, SECRET, now) + "," + sign(payload, rolled, now).split(",")[1]
    assert not receive(app, conn.id, payload, both, SystemClock()).duplicate
    late = _event("evt_old_secret_only")
    with pytest.raises(BadSignature):  # the old secret alone no longer
        receive(app, conn.id, late, _signed(late), SystemClock())
