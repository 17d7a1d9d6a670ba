"""The receiver and the webhook settings over HTTP, against a real `headwater serve`
and the sandbox's own signed deliveries: accepted deliveries answer at once and ask
for one run; forged, stale, replayed, misdirected and oversized deliveries change
nothing; the rate limit per connection; settings routes behind authentication."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from sqlalchemy import text
from tests.entrypoints.webhooks.conftest import Hooked, hooked

from headwater.adapters.store import runs as run_store
from headwater.adapters.store import webhooks as store
from headwater.sandbox.testing import start_sandbox
from headwater.sandbox.webhooks import sign
from headwater.services import connections
from headwater.services.auth import tokens, workspaces
from headwater.services.pipelines import runner
from headwater.services.webhooks.receive import secret_context

pytestmark = pytest.mark.slow

REFUSED = {
    "error": {
        "type": "invalid_signature",
        "message": "the delivery could not be verified as coming from Stripe for this endpoint",
        "field": None,
    }
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hooked]:
    env = {"HEADWATER_WEBHOOK_RATE": "0.2", "HEADWATER_WEBHOOK_BURST": "30"}
    with (
        start_sandbox(customers=0, seed=8) as sandbox,
        hooked(tmp_path_factory.mktemp("home"), sandbox, workers=0, env=env) as running,
    ):
        with running.api() as api:
            answer = api.post(
                f"/connections/{running.connection.id}/webhook", json={"url": running.served.url}
            )
        assert answer.status_code == 200, answer.text
        yield running


def _secret(served: Hooked, connection_id: str | None = None) -> str:
    """The signing secret Stripe (the sandbox) holds for the endpoint; the test plays
    Stripe when it signs deliveries of its own."""
    cid = connection_id or served.connection.id
    found = store.get_endpoint(served.app.engine, cid)
    assert found is not None
    return served.app.cipher.decrypt(found.secret_encrypted, context=secret_context(cid))


def _now() -> int:
    return int(datetime.now(UTC).timestamp())


def _post(url: str, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["stripe-signature"] = signature
    return httpx.post(url, content=body, headers=headers, timeout=30)


def _latest_event(served: Hooked) -> bytes:
    answer = httpx.get(
        f"{served.sandbox.url}/v1/events",
        params={"limit": 1},
        headers={"Authorization": f"Bearer {served.sandbox.secret_key}"},
    )
    event = answer.json()["data"][0]
    return httpx.get(
        f"{served.sandbox.url}/v1/events/{event['id']}",
        headers={"Authorization": f"Bearer {served.sandbox.secret_key}"},
    ).content


def _create_customer(served: Hooked, email: str) -> str:
    answer = httpx.post(
        f"{served.sandbox.url}/v1/customers",
        data={"email": email},
        headers={"Authorization": f"Bearer {served.sandbox.secret_key}"},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def _count_events(served: Hooked) -> int:
    with served.app.engine.connect() as conn:
        return int(conn.execute(text("select count(*) from webhook_events")).scalar() or 0)


def _wait_for(check: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_deliveries_ask_for_one_run_and_refusals_change_nothing(served: Hooked) -> None:
    engine = served.app.engine
    before = served.sandbox.stats()["webhook_deliveries"]
    _create_customer(served, "first@example.com")
    _wait_for(lambda: served.sandbox.stats()["webhook_deliveries"] > before)
    _wait_for(lambda: run_store.live_run(engine, served.pipeline.id) is not None)
    queued = run_store.live_run(engine, served.pipeline.id)
    assert queued is not None
    for i in range(5):  # more changes: the queued run covers them, no second run
        _create_customer(served, f"more{i}@example.com")
    _wait_for(lambda: served.sandbox.stats()["webhook_deliveries"] >= before + 6)
    time.sleep(1.0)  # past the quiet spell: a wrongly coalescing dispatcher would act now
    assert len(store.pending_followups(engine)) <= 1  # waiting for the queued run
    live = run_store.live_run(engine, served.pipeline.id)
    assert live is not None
    assert live.id == queued.id

    seen = _count_events(served)
    event = _latest_event(served)
    secret = _secret(served)
    receiver = served.receiver()
    refusals = [
        (receiver, sign(event, "whsec_forged_by_a_stranger", _now())),  # forged
        (receiver, sign(event, secret, _now() - 600)),  # stale
        (receiver, sign(event, secret, _now()) + "0"),  # tampered digest
        (receiver, None),  # unsigned
        (served.receiver("conn_doesnotexist"), sign(event, secret, _now())),  # wrong id
        (served.receiver(served.pipeline.id), sign(event, secret, _now())),
    ]
    for url, signature in refusals:
        answer = _post(url, event, signature)
        assert (answer.status_code, answer.json()) == (400, REFUSED), signature
    tampered = event.replace(b"more4@example.com", b"evil@example.com")
    assert _post(receiver, tampered, sign(event, secret, _now())).status_code == 400

    replayed = _post(receiver, event, sign(event, secret, _now()))  # a validly signed replay
    assert replayed.status_code == 200
    assert replayed.json()["duplicate"] is True
    assert replayed.json()["runs_requested"] == 0

    huge = orjson.dumps({"id": "evt_huge", "type": "customer.updated", "pad": "x" * 600_000})
    answer = _post(receiver, huge, sign(huge, secret, _now()))
    assert answer.status_code == 413
    assert answer.json()["error"]["type"] == "payload_too_large"
    assert _count_events(served) == seen
    assert len(store.pending_followups(engine)) <= 1

    with served.api() as api:
        shown = api.get(f"/connections/{served.connection.id}/webhook").json()
    assert shown["last_delivery_at"] is not None
    # Cancelled before it read anything: the changes asked about get a run of their own.
    runner.cancel_run(served.app, queued.id)
    _wait_for(lambda: run_store.live_run(engine, served.pipeline.id) is not None)
    again = run_store.live_run(engine, served.pipeline.id)
    assert again is not None
    assert again.id != queued.id
    # The request stays only to see whether that run settles what it reads (marked
    # just after the run is queued, in a transaction of its own).
    _wait_for(lambda: [f.settling for f in store.pending_followups(engine)] == [True])
    runner.cancel_run(served.app, again.id)


def test_the_rate_limit_is_per_connection_and_says_when_to_retry(served: Hooked) -> None:
    body = b'{"id":"evt_x","type":"customer.created"}'
    statuses = [
        _post(served.receiver("conn_probe_a"), body, "t=1,v1=00").status_code for _ in range(40)
    ]
    assert statuses[:30] == [400] * 30  # the burst, refused for the signature
    assert statuses[-1] == 429
    limited = _post(served.receiver("conn_probe_a"), body, None)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limited"
    assert _post(served.receiver("conn_probe_b"), body, None).status_code == 400


def test_webhook_settings_over_the_api(served: Hooked) -> None:
    conn = connections.add_stripe(
        served.app, "second", served.sandbox.secret_key, served.sandbox.url, 50.0
    )
    path = f"/connections/{conn.id}/webhook"
    with served.api() as api:
        shown = api.get(path).json()
        assert shown["configured"] is False
        assert shown["path"] == f"/api/v1/webhooks/stripe/{conn.id}"
        assert httpx.get(f"{served.served.url}/api/v1{path}").status_code == 401
        bad = api.put(f"{path}/secret", json={"secret": "sk_test_oops"})
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "secret"
        assert "sk_test_oops" not in bad.text
        made = api.post(path, json={"url": served.served.url + "/"}).json()
        assert made["url"] == served.receiver(conn.id)
        ids = [e["id"] for e in served.sandbox.webhooks()]
        assert made["stripe_endpoint_id"] in ids
        assert _secret(served, conn.id) not in api.get(path).text
        hand = api.put(f"{path}/secret", json={"secret": "whsec_made_by_hand_123"}).json()
        assert hand["secret"] != "whsec_made_by_hand_123"

        other_ws = workspaces.add_workspace(served.app, "elsewhere")
        raw, _ = tokens.create_token(served.app.in_workspace(other_ws.id), "other")
        other = {"Authorization": f"Bearer {raw}"}
        for method in ("GET", "POST", "DELETE"):
            answer = api.request(method, path, headers=other, json={"url": "https://x.example"})
            assert answer.status_code == 404, method

        assert api.delete(path).json()["stripe_endpoint_id"] == made["stripe_endpoint_id"]
        assert made["stripe_endpoint_id"] not in [e["id"] for e in served.sandbox.webhooks()]
        assert api.delete(path).status_code == 404
        _create_customer(served, "settings@example.com")  # an event, whatever ran before
        event = _latest_event(served)
        refused = _post(
            served.receiver(conn.id), event, sign(event, "whsec_made_by_hand_123", _now())
        )
        assert refused.status_code == 400


def test_a_flood_of_forged_deliveries_does_not_refuse_stripes_own(served: Hooked) -> None:
    """The rate limit was charged before the signature check, one bucket per
    connection: anyone who knew a receiver URL could flood it with forged deliveries,
    and Stripe's own then got 429s too (and retried later, hours later in the end)."""
    receiver, forged = served.receiver(), b'{"id":"evt_forged","type":"customer.updated"}'
    statuses = [_post(receiver, forged, "t=1,v1=00").status_code for _ in range(60)]
    assert 429 in statuses  # the refusals' bucket ran out
    assert set(statuses) <= {400, 429}
    genuine = orjson.dumps({"id": "evt_genuine_after_a_flood", "type": "invoice.paid"})
    answer = _post(receiver, genuine, sign(genuine, _secret(served), _now()))
    assert answer.status_code == 200, answer.text
    assert answer.json()["event_id"] == "evt_genuine_after_a_flood"
