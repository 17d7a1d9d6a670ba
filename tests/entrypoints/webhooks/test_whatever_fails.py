"""Webhooks keep the warehouse current whatever happens to the deliveries: the same
event twice at once, events out of order, deliveries while a full run reads, serve
stopped while Stripe keeps changing, and pipelines whose filters a change moves a
customer between.  A real `headwater serve`, the sandbox's signed deliveries over HTTP
(or the test playing Stripe with the endpoint's secret), the official `stripe` SDK
changing customers; the PostgreSQL warehouse is compared with what Stripe holds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
import stripe
from tests.conftest import PG_URL, fresh_schema
from tests.serving import Service, free_port, start_serve, wait_for

from headwater.adapters.store import runs as run_store
from headwater.adapters.store import webhooks as store
from headwater.kernel.entities import Connection, Run
from headwater.kernel.settings import Settings
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.sandbox.webhooks import sign
from headwater.services import connections
from headwater.services.app import App
from headwater.services.auth import tokens
from headwater.services.pipelines import manage, runner
from headwater.services.warehouse import set_url
from headwater.services.webhooks import endpoints

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MAPPING = {"kind": "mapping", "mapping": {"email": "email", "created_at": "created"}}
HAND_SECRET = "whsec_played_by_the_test_0123456789"


class World:
    """A home with a connection to the sandbox, a PostgreSQL warehouse, a token, and
    a serve that can be stopped and started again on the same port."""

    def __init__(self, home: Path, sandbox: RunningSandbox, schema: str) -> None:
        self.home, self.sandbox, self.schema = home, sandbox, schema
        self.app = App.open(Settings.embedded(home))
        self.connection: Connection = connections.add_stripe(
            self.app, "sandbox", sandbox.secret_key, sandbox.url, 100.0
        )
        set_url(self.app, f"{PG_URL}?schema={schema}")
        self.token, _ = tokens.create_token(self.app, "webhook tests")
        self.port = free_port()
        self.served: Service | None = None
        self.stripe = stripe.StripeClient(
            sandbox.secret_key, base_addresses={"api": sandbox.url}, max_network_retries=0
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def receiver(self) -> str:
        return f"{self.url}/api/v1/webhooks/stripe/{self.connection.id}"

    def pipeline(self, name: str, filter: dict[str, object] | None = None) -> str:
        made = manage.create(
            self.app, self.connection.id, name, MAPPING, filter=filter, incremental=True
        )
        first = runner.run_pipeline(self.app, made.id)
        assert first.status == "succeeded", first.message
        return made.id

    def start(self) -> None:
        assert self.served is None
        self.served = start_serve(self.home, port=self.port)

    def stop(self) -> None:
        assert self.served is not None
        assert self.served.stop() == 0, self.served.text()
        self.served = None

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )

    def rows(self, pipeline_id: str) -> dict[str, str | None]:
        query = f'SELECT _source_id, email FROM "{self.schema}".identities WHERE _pipeline_id = %s'
        with psycopg.connect(PG_URL) as conn:
            found = conn.execute(query, [pipeline_id]).fetchall()
        assert len(found) == len({r[0] for r in found}), "a customer is in the warehouse twice"
        return dict(found)

    def settled(self, *pipeline_ids: str) -> bool:
        engine = self.app.engine
        return not store.pending_followups(engine) and all(
            run_store.live_run(engine, p) is None for p in pipeline_ids
        )

    def customers(
        self, keep: Callable[[stripe.Customer], bool] = lambda c: True
    ) -> dict[str, str | None]:
        return {
            c.id: c.email
            for c in self.stripe.v1.customers.list({"limit": 100}).auto_paging_iter()
            if keep(c)
        }

    def event(self, event_id: str) -> bytes:
        answer = httpx.get(
            f"{self.sandbox.url}/v1/events/{event_id}",
            headers={"Authorization": f"Bearer {self.sandbox.secret_key}"},
        )
        assert answer.status_code == 200, answer.text
        return answer.content

    def post(self, body: bytes, secret: str = HAND_SECRET) -> httpx.Response:
        signature = sign(body, secret, int(datetime.now(UTC).timestamp()))
        return httpx.post(
            self.receiver(),
            content=body,
            headers={"content-type": "application/json", "stripe-signature": signature},
            timeout=30,
        )


@contextmanager
def world(tmp_path: Path, customers: int, seed: int, **sandbox: float) -> Iterator[World]:
    with (
        start_sandbox(customers=customers, seed=seed, **sandbox) as running,  # type: ignore[arg-type]
        fresh_schema("w") as schema,
    ):
        made = World(tmp_path / "home", running, schema)
        try:
            yield made
        finally:
            if made.served is not None:
                made.served.stop()
            made.app.close()


def _runs(w: World, pipeline_id: str) -> list[Run]:
    return run_store.list_runs(w.app.engine, [pipeline_id], 100)


def test_duplicates_racing_and_events_out_of_order_end_in_the_latest_state_once(
    tmp_path: Path,
) -> None:
    with world(tmp_path, customers=5, seed=31) as w:
        pipe = w.pipeline("all")
        endpoints.set_secret(w.app, w.connection.id, HAND_SECRET)  # the test plays Stripe
        w.start()
        made = w.stripe.v1.customers.create({"email": "v1@example.com"})
        w.stripe.v1.customers.update(made.id, {"email": "v2@example.com"})
        w.stripe.v1.customers.update(made.id, {"email": "v3@example.com"})
        gone = w.stripe.v1.customers.create({"email": "doomed@example.com"})
        w.stripe.v1.customers.update(gone.id, {"email": "doomed2@example.com"})
        w.stripe.v1.customers.delete(gone.id)
        events = [e.id for e in w.stripe.v1.events.list({"limit": 100}).auto_paging_iter()]
        bodies = [w.event(e) for e in events[:6]]  # newest first: delivered oldest last
        # Each one twice, concurrently: exactly one of each pair is taken.
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(w.post, bodies + bodies))
        assert [a.status_code for a in answers] == [200] * 12, [a.text for a in answers]
        fresh = [a.json()["event_id"] for a in answers if not a.json()["duplicate"]]
        assert sorted(fresh) == sorted(events[:6])
        wait_for(lambda: w.settled(pipe), 30, "the service settling")
        assert w.rows(pipe) == w.customers()
        assert w.rows(pipe)[made.id] == "v3@example.com"
        assert gone.id not in w.rows(pipe)
        # The oldest update delivered once more, much later: nothing goes back.
        assert w.post(bodies[-2]).json()["duplicate"] is True
        time.sleep(1.0)
        wait_for(lambda: w.settled(pipe), 30, "the service settling")
        assert w.rows(pipe)[made.id] == "v3@example.com"
        assert all(r.status == "succeeded" for r in _runs(w, pipe)), _runs(w, pipe)


def test_changes_while_serve_is_stopped_arrive_on_restart(tmp_path: Path) -> None:
    # Stripe retries a failed delivery (here after 1, 2, 4, 8 ... s, six attempts).
    with world(tmp_path, customers=20, seed=32, webhook_retry_seconds=1.0) as w:
        pipe = w.pipeline("all")
        w.start()
        with w.api() as api:
            answer = api.post(f"/connections/{w.connection.id}/webhook", json={"url": w.url})
        assert answer.status_code == 200, answer.text
        w.stop()
        existing = list(w.customers())
        made = [w.stripe.v1.customers.create({"email": f"down{i}@example.com"}) for i in range(3)]
        w.stripe.v1.customers.update(existing[0], {"email": "changed-while-down@example.com"})
        w.stripe.v1.customers.delete(existing[1])
        time.sleep(1.5)  # the first attempts fail: nothing listens
        assert w.sandbox.stats()["webhook_failures"] >= 5
        w.start()
        wait_for(lambda: {m.id for m in made} <= set(w.rows(pipe)), 30, "the retried deliveries")
        wait_for(lambda: w.settled(pipe), 30, "the service settling")
        assert w.rows(pipe) == w.customers()
        full = w.pipeline("a fresh full import")
        assert w.rows(pipe) == w.rows(full)


def test_a_change_moves_a_customer_from_one_pipelines_filter_to_anothers(
    tmp_path: Path,
) -> None:
    def plan(name: str) -> dict[str, object]:
        cond = {"property": "metadata.plan", "operator": "is", "values": [name]}
        return {"logical": "and", "conditions": [cond]}

    with world(tmp_path, customers=0, seed=33) as w:
        mover = w.stripe.v1.customers.create(
            {"email": "m@example.com", "metadata": {"plan": "free"}}
        )
        stays = w.stripe.v1.customers.create(
            {"email": "s@example.com", "metadata": {"plan": "pro"}}
        )
        free, pro = w.pipeline("free", plan("free")), w.pipeline("pro", plan("pro"))
        assert (set(w.rows(free)), set(w.rows(pro))) == ({mover.id}, {stays.id})
        w.start()
        with w.api() as api:
            answer = api.post(f"/connections/{w.connection.id}/webhook", json={"url": w.url})
        assert answer.status_code == 200, answer.text
        w.stripe.v1.customers.update(mover.id, {"metadata": {"plan": "pro"}})
        wait_for(lambda: mover.id in w.rows(pro), 30, "the customer entering pro")
        wait_for(lambda: w.settled(free, pro), 30, "the service settling")
        assert w.rows(free) == {}
        assert set(w.rows(pro)) == {mover.id, stays.id}
        w.stripe.v1.customers.update(mover.id, {"metadata": {"plan": "free"}, "email": "b@x.io"})
        w.stripe.v1.customers.update(stays.id, {"metadata": {"plan": ""}})  # leaves both
        wait_for(lambda: mover.id in w.rows(free), 30, "the customer back in free")
        wait_for(lambda: w.settled(free, pro), 30, "the service settling")
        assert w.rows(free) == {mover.id: "b@x.io"}
        assert w.rows(pro) == {}


def test_changes_made_while_serve_was_down_land_on_restart_before_stripe_retries(
    tmp_path: Path,
) -> None:
    """Stripe retries a failed delivery hours later in the end (minutes at first): serve
    coming back must not wait for that to read what changed while it was down."""
    with world(tmp_path, customers=10, seed=34, webhook_retry_seconds=600.0) as w:
        pipe = w.pipeline("all")
        w.start()
        with w.api() as api:
            answer = api.post(f"/connections/{w.connection.id}/webhook", json={"url": w.url})
        assert answer.status_code == 200, answer.text
        w.stop()
        made = w.stripe.v1.customers.create({"email": "while-down@example.com"})
        wait_for(lambda: w.sandbox.stats()["webhook_failures"] >= 1, 10, "a failed delivery")
        w.start()
        wait_for(lambda: made.id in w.rows(pipe), 30, "the change made while serve was down")
        wait_for(lambda: w.settled(pipe), 30, "the service settling")
        assert w.rows(pipe) == w.customers()


def test_deliveries_during_a_full_run_are_read_after_it(tmp_path: Path) -> None:
    with world(tmp_path, customers=300, seed=35) as w:
        pipe = w.pipeline("all")
        w.start()
        with w.api() as api:
            answer = api.post(f"/connections/{w.connection.id}/webhook", json={"url": w.url})
            assert answer.status_code == 200, answer.text
            w.sandbox.control(latency_ms=150)  # a full read of three pages takes a while
            full = api.post(f"/pipelines/{pipe}/runs", json={"full": True})
            assert full.status_code == 202, full.text
        full_id = full.json()["id"]
        wait_for(lambda: run_store.get_run(w.app.engine, full_id, 0).status == "running", 20, "run")
        existing = list(w.customers())
        made = w.stripe.v1.customers.create({"email": "during-full@example.com"})
        w.stripe.v1.customers.update(existing[5], {"email": "updated-during-full@example.com"})
        w.stripe.v1.customers.delete(existing[7])
        w.sandbox.control(latency_ms=0)
        wait_for(lambda: w.settled(pipe), 60, "the service settling")
        assert run_store.get_run(w.app.engine, full_id, 0).status == "succeeded"
        rows = w.rows(pipe)
        assert rows == w.customers()
        assert made.id in rows
        assert existing[7] not in rows


def test_refused_deliveries_write_nothing_and_say_nothing_more(tmp_path: Path) -> None:
    with world(tmp_path, customers=1, seed=36) as w:
        pipe = w.pipeline("all")
        endpoints.set_secret(w.app, w.connection.id, HAND_SECRET)
        other = connections.add_stripe(w.app, "other", w.sandbox.secret_key, w.sandbox.url, 9.0)
        endpoints.set_secret(w.app, other.id, "whsec_the_other_connections_secret")
        w.start()
        wait_for(lambda: w.settled(pipe), 30, "the catch-up at start")
        runs_before = len(_runs(w, pipe))
        body = b'{"id":"evt_refusals","object":"event","type":"customer.updated"}'
        now = int(datetime.now(UTC).timestamp())
        base = {"content-type": "application/json"}

        def post(content: object, signature: str | None, **headers: str) -> httpx.Response:
            sent = {**base, **headers, **({"stripe-signature": signature} if signature else {})}
            return httpx.post(w.receiver(), content=content, headers=sent, timeout=30)  # type: ignore[arg-type]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts as it reads
            for _ in range(700):
                yield b"x" * 1024

        answers = {
            "wrong secret": post(body, sign(body, "whsec_not_this_one_at_all", now)),
            "other connection's secret": post(
                body, sign(body, "whsec_the_other_connections_secret", now)
            ),
            "replayed beyond tolerance": post(body, sign(body, HAND_SECRET, now - 301)),
            "missing header": post(body, None),
            "malformed json": post(
                b'{"id": "evt_x", ', sign(b'{"id": "evt_x", ', HAND_SECRET, now)
            ),
            "not an event": post(b"[1, 2]", sign(b"[1, 2]", HAND_SECRET, now)),
        }
        for why, answer in answers.items():
            assert answer.status_code == 400, (why, answer.text)
            assert answer.json()["error"]["type"] == "invalid_signature", why
        huge = post(chunks(), sign(b"", HAND_SECRET, now))
        assert huge.status_code == 413, huge.text
        assert store.pending_followups(w.app.engine) == []
        with w.api() as api:
            shown = api.get(f"/connections/{w.connection.id}/webhook").json()
        assert shown["last_delivery_at"] is None
        assert len(_runs(w, pipe)) == runs_before
        accepted = w.post(body)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json() == {
            "received": True,
            "duplicate": False,
            "event_id": "evt_refusals",
            "runs_requested": 1,
        }


def test_changes_made_while_the_webhook_was_removed_land_when_it_is_registered_again(
    tmp_path: Path,
) -> None:
    with world(tmp_path, customers=3, seed=37) as w:
        pipe = w.pipeline("all")
        w.start()
        path = f"/connections/{w.connection.id}/webhook"
        with w.api() as api:
            first = api.post(path, json={"url": w.url}).json()
            made = w.stripe.v1.customers.create({"email": "hooked@example.com"})
            wait_for(lambda: made.id in w.rows(pipe), 30, "a delivered change")
            wait_for(lambda: w.settled(pipe), 30, "the service settling")
            delivered = api.get(path).json()
            assert delivered["last_delivery_at"] is not None
            assert api.delete(path).status_code == 200
            assert api.get(path).json()["configured"] is False
            assert [e["id"] for e in w.sandbox.webhooks()] == []
            unheard = w.stripe.v1.customers.create({"email": "unheard@example.com"})
            w.stripe.v1.customers.update(made.id, {"email": "changed-unheard@example.com"})
            time.sleep(1.0)
            assert unheard.id not in w.rows(pipe)  # nobody told Headwater
            again = api.post(path, json={"url": w.url}).json()
            assert again["configured"] is True
            assert again["stripe_endpoint_id"] not in (None, first["stripe_endpoint_id"])
            assert again["last_delivery_at"] is None  # a new endpoint: nothing from it yet
        wait_for(lambda: unheard.id in w.rows(pipe), 30, "the changes made while removed")
        wait_for(lambda: w.settled(pipe), 30, "the service settling")
        assert w.rows(pipe) == w.customers()


def test_the_status_says_when_stripe_disabled_or_deleted_the_endpoint(tmp_path: Path) -> None:
    """Stripe disables an endpoint whose deliveries keep failing (and a user can disable
    or delete it in the Dashboard): then nothing arrives, and the status must say so
    rather than "on" with a last delivery that only grows old."""
    with world(tmp_path, customers=1, seed=38) as w:
        w.start()
        path = f"/connections/{w.connection.id}/webhook"
        with w.api() as api:
            made = api.post(path, json={"url": w.url}).json()
            assert api.get(path).json()["stripe_status"] == "enabled"
            w.sandbox.set_webhook_disabled(made["stripe_endpoint_id"])
            shown = api.get(path).json()
            assert shown["configured"] is True
            assert shown["stripe_status"] == "disabled"
            assert "disabled" in shown["warning"]
            assert made["stripe_endpoint_id"] in shown["warning"]
            w.stripe.v1.webhook_endpoints.delete(made["stripe_endpoint_id"])
            shown = api.get(path).json()
            assert shown["stripe_status"] == "deleted"
            assert "register" in shown["warning"]
            again = api.post(path, json={"url": w.url}).json()
            assert api.get(path).json()["stripe_status"] == "enabled"
            assert api.get(path).json()["warning"] is None
            api.delete(path)
            hand = api.put(f"{path}/secret", json={"secret": HAND_SECRET}).json()
            assert hand["stripe_status"] is None  # made by hand: Headwater cannot see it
            assert again["stripe_endpoint_id"] != made["stripe_endpoint_id"]
