"""Changes in Stripe (the sandbox) reach the warehouse through its own signed webhook
deliveries and a real `headwater serve` with workers: no schedule, no "run now".  A
burst lands exactly with at most two runs; when deliveries stop, the next scheduled run
catches up.  The warehouse is PostgreSQL, read directly."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from tests.conftest import fresh_schema
from tests.entrypoints.webhooks.conftest import Hooked, hooked
from tests.serving import wait_for

from headwater.adapters.store import objects
from headwater.adapters.store import runs as run_store
from headwater.adapters.store.tables import pipelines
from headwater.kernel.entities import utcnow
from headwater.sandbox.testing import RunningSandbox, start_sandbox

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


class Stripe:
    """The sandbox's customers API, as a merchant's own code would call it."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.http = httpx.Client(
            base_url=sandbox.url,
            headers={"Authorization": f"Bearer {sandbox.secret_key}"},
            timeout=30,
        )

    def close(self) -> None:
        self.http.close()

    def create(self, email: str) -> str:
        return str(self._ok(self.http.post("/v1/customers", data={"email": email}))["id"])

    def update(self, customer_id: str, email: str) -> None:
        self._ok(self.http.post(f"/v1/customers/{customer_id}", data={"email": email}))

    def delete(self, customer_id: str) -> None:
        self._ok(self.http.delete(f"/v1/customers/{customer_id}"))

    def emails(self) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": 100}
            if after:
                params["starting_after"] = after
            page = self._ok(self.http.get("/v1/customers", params=params))
            found.update({c["id"]: c["email"] for c in page["data"]})
            if not page["has_more"]:
                return found
            after = page["data"][-1]["id"]

    @staticmethod
    def _ok(answer: httpx.Response) -> dict[str, object]:
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        return body


def _runs(world: Hooked) -> list[str]:
    return [r.kind for r in run_store.list_runs(world.app.engine, [world.pipeline.id], 100)]


def test_create_update_delete_reach_the_warehouse_by_themselves(tmp_path: Path) -> None:
    with (
        start_sandbox(customers=30, seed=21) as sandbox,
        fresh_schema("w") as schema,
        hooked(tmp_path / "home", sandbox, warehouse_schema=schema, register=True) as world,
        closing(Stripe(sandbox)) as stripe,
    ):
        assert len(world.rows()) == 30  # the first (full) run
        made = stripe.create("new@example.com")
        wait_for(lambda: world.rows().get(made) == "new@example.com", 20, "a created customer")
        stripe.update(made, "changed@example.com")
        wait_for(lambda: world.rows().get(made) == "changed@example.com", 20, "an update")
        stripe.delete(made)
        wait_for(lambda: made not in world.rows(), 20, "a deletion")
        wait_for(world.settled, 20, "the service settling")
        assert world.rows() == stripe.emails()
        kinds = _runs(world)
        assert kinds.count("full") == 1  # the first run; every later one is incremental
        assert set(kinds) == {"full", "incremental"}
        # At most one run per change (they were apart), and one that settles the last
        # (`changes.SETTLE`: read again once Stripe cannot list an earlier event late).
        assert len(kinds) <= 1 + 3 + 1


def test_a_burst_of_200_changes_lands_exactly_in_a_few_runs(tmp_path: Path) -> None:
    with (
        start_sandbox(customers=100, seed=22) as sandbox,
        fresh_schema("w") as schema,
        hooked(tmp_path / "home", sandbox, warehouse_schema=schema, register=True) as world,
        closing(Stripe(sandbox)) as stripe,
    ):
        existing = list(stripe.emails())
        before = len(_runs(world))
        delivered = sandbox.stats()["webhook_deliveries"]

        def change(i: int) -> None:
            if i % 2:
                stripe.update(existing[i % len(existing)], f"burst{i}@example.com")
            else:
                stripe.create(f"burst{i}@example.com")

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(change, range(200)))
        wait_for(lambda: sandbox.stats()["webhook_deliveries"] >= delivered + 200, 60, "deliveries")
        all_delivered = utcnow()
        wait_for(world.settled, 60, "the service settling")
        assert world.rows() == stripe.emails()  # exactly what Stripe holds, read back
        # Never one run per change: the first run when the burst's request is due (a
        # quiet spell, or MOST_WAIT after the first delivery), while deliveries go on a
        # follow-up for what arrived during it, and once they stopped at most that
        # follow-up and the run that settles what the last one read (`changes.SETTLE`).
        # Deliveries that straggle in after a run that read their changes ask Stripe
        # first and run nothing.  On an idle machine the burst is one run and the
        # settling one; under load the deliveries spread over a few seconds more.
        listed = run_store.list_runs(world.app.engine, [world.pipeline.id], 100)  # newest first
        runs = listed[: len(listed) - before]
        assert 1 <= len(runs) <= 3, [(r.kind, r.created_at) for r in runs]
        after = [r for r in runs if objects.aware(r.created_at) >= all_delivered]
        assert len(after) <= 2, [(r.kind, r.created_at) for r in runs]


def test_when_deliveries_stop_the_next_scheduled_run_catches_up(tmp_path: Path) -> None:
    with (
        start_sandbox(customers=10, seed=23) as sandbox,
        fresh_schema("w") as schema,
        hooked(
            tmp_path / "home", sandbox, warehouse_schema=schema, register=True, schedule="24h"
        ) as world,
        closing(Stripe(sandbox)) as stripe,
    ):
        made = stripe.create("before@example.com")
        wait_for(lambda: made in world.rows(), 20, "a delivered change")
        wait_for(world.settled, 30, "the run that settles it")  # then Stripe goes quiet
        [endpoint] = sandbox.webhooks()
        sandbox.set_webhook_disabled(endpoint["id"])  # Stripe stops delivering midway
        missed = [stripe.create(f"missed{i}@example.com") for i in range(5)]
        stripe.update(made, "updated-while-deaf@example.com")
        time.sleep(1.5)  # what a delivery would have taken, and more
        wait_for(world.settled, 20, "the service settling")
        assert not set(missed) & set(world.rows())
        # The schedule's next slot arrives (moved to now rather than waiting 24 h).
        with world.app.engine.begin() as conn:
            conn.execute(
                update(pipelines)
                .where(pipelines.c.id == world.pipeline.id)
                .values(next_run_at=utcnow() - timedelta(seconds=1))
            )
        wait_for(lambda: set(missed) <= set(world.rows()), 30, "the scheduled catch-up")
        wait_for(world.settled, 20, "the service settling")
        assert world.rows() == stripe.emails()
        assert world.rows()[made] == "updated-while-deaf@example.com"
