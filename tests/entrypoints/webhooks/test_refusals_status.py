"""Refused deliveries show in the webhook's status (API, CLI --json), against a real
`headwater serve` and the sandbox's own signed deliveries: with a wrong signing secret
stored (another endpoint's), Stripe's deliveries are refused and the status says how
many, when and why instead of looking "on"; the right secret makes them accepted and
the status say so.  A flood of forged deliveries is counted in memory: the store is
written about once a second, not once per delivery (SQLite triggers count every row
the serving process writes)."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from tests.entrypoints.test_cli import doc, invoke
from tests.entrypoints.webhooks.conftest import Hooked, hooked
from tests.serving import wait_for

from headwater.adapters.store import webhooks as store
from headwater.sandbox.testing import start_sandbox
from headwater.services import connections
from headwater.services.webhooks import endpoints
from headwater.services.webhooks.receive import secret_context

pytestmark = pytest.mark.slow

WRONG = "whsec_the_secret_of_another_endpoint_0123"
MISMATCH = "signature does not match the stored secret"


def _stored_secret(world: Hooked) -> str:
    found = store.get_endpoint(world.app.engine, world.connection.id)
    assert found is not None
    return world.app.cipher.decrypt(
        found.secret_encrypted, context=secret_context(world.connection.id)
    )


def _change_a_customer(world: Hooked, email: str) -> None:
    answer = httpx.post(
        f"{world.sandbox.url}/v1/customers",
        data={"email": email},
        headers={"Authorization": f"Bearer {world.sandbox.secret_key}"},
    )
    assert answer.status_code == 200, answer.text


def test_a_wrong_secret_refuses_stripes_deliveries_and_the_status_says_so(home: Path) -> None:
    with (
        start_sandbox(customers=2, seed=41) as sandbox,
        hooked(home, sandbox, workers=1, register=True) as world,
        world.api() as api,
    ):
        path = f"/connections/{world.connection.id}/webhook"
        right = _stored_secret(world)
        # The user pastes another endpoint's secret: Stripe signs with the right one.
        pasted = api.put(f"{path}/secret", json={"secret": WRONG})
        assert pasted.status_code == 200, pasted.text
        assert pasted.json()["refused_deliveries"] == 0
        _change_a_customer(world, "refused@example.com")
        wait_for(lambda: (api.get(path).json()["refused_deliveries"] or 0) >= 1, 20, "a refusal")
        shown: dict[str, Any] = api.get(path).json()
        assert shown["configured"] is True
        assert shown["stripe_status"] == "enabled"  # Stripe has nothing to complain of
        assert shown["last_delivery_at"] is None
        assert shown["latest_delivery"] == "refused"
        assert shown["last_refusal"] == MISMATCH
        assert shown["last_refused_at"] is not None
        assert "deliveries are refused" in shown["warning"]
        assert "store the endpoint's own" in shown["warning"]
        for secret in (right, WRONG):
            assert secret not in str(shown)
        assert "refused@example.com" not in str(shown)  # the body is never echoed

        # The CLI reads the same status (the counts are in the store, not the server).
        cli = doc("connections", "webhook", world.connection.id)
        assert cli["refused_deliveries"] >= 1
        assert (cli["latest_delivery"], cli["last_refusal"]) == ("refused", MISMATCH)
        assert "store the endpoint's own" in cli["warning"]  # Stripe retries meanwhile

        # The right secret: counts start again, Stripe's deliveries are accepted.
        fixed = api.put(f"{path}/secret", json={"secret": right}).json()
        assert (fixed["refused_deliveries"], fixed["last_refusal"]) == (0, None)
        _change_a_customer(world, "accepted@example.com")
        wait_for(lambda: api.get(path).json()["latest_delivery"] == "accepted", 20, "a delivery")
        shown = api.get(path).json()
        assert shown["last_delivery_at"] is not None
        assert (shown["refused_deliveries"], shown["warning"]) == (0, None)
        cli = doc("connections", "webhook", world.connection.id)
        assert (cli["latest_delivery"], cli["refused_deliveries"]) == ("accepted", 0)


_WRITES = "CREATE TABLE IF NOT EXISTS _test_writes (tbl TEXT, op TEXT, at REAL)"


_NOW = "julianday('now') * 86400.0"  # seconds, to the millisecond


def _count_writes(world: Hooked) -> None:
    """A trigger on every table of the SQLite store logs each row written, by anyone."""
    with world.app.engine.begin() as conn:
        conn.execute(text(_WRITES))
        tables = conn.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'table' AND name != '_test_writes'")
        ).scalars()
        for table in list(tables):
            for op in ("INSERT", "UPDATE", "DELETE"):
                conn.execute(
                    text(
                        f'CREATE TRIGGER "_test_{table}_{op}" AFTER {op} ON "{table}" '
                        f"BEGIN INSERT INTO _test_writes VALUES ('{table}', '{op}', {_NOW}); END"
                    )
                )


def _writes(world: Hooked) -> list[tuple[str, str, float]]:
    """(table, operation, when in seconds) of each row written, in order."""
    with world.app.engine.connect() as conn:
        found = conn.execute(text("SELECT tbl, op, at FROM _test_writes ORDER BY rowid"))
        return [(r.tbl, r.op, r.at) for r in found]


def test_a_flood_of_forged_deliveries_is_not_a_write_per_delivery(home: Path) -> None:
    env = {"HEADWATER_WEBHOOK_RATE": "1", "HEADWATER_WEBHOOK_BURST": "100"}
    with (
        start_sandbox(customers=0, seed=42) as sandbox,
        hooked(home, sandbox, workers=0, env=env) as world,
        world.api() as api,
    ):
        endpoints.set_secret(world.app, world.connection.id, WRONG)
        _count_writes(world)
        body = b'{"id":"evt_forged","type":"customer.updated"}'
        headers = {"content-type": "application/json", "stripe-signature": "t=1,v1=00"}

        def forge(target: str) -> int:
            return httpx.post(target, content=body, headers=headers, timeout=30).status_code

        flood, probes = 200, 100
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(forge, [world.receiver()] * flood))
            unknown = list(pool.map(forge, [world.receiver("conn_not_one")] * probes))
        elapsed = time.monotonic() - started
        assert set(answers) == {400, 429}  # past the refusals' burst: 429, counted too
        assert set(unknown) <= {400, 429}
        path = f"/connections/{world.connection.id}/webhook"
        wait_for(lambda: api.get(path).json()["refused_deliveries"] == flood, 10, "the counts")
        # 'timestamp outside tolerance' is judged after the digest: t=1 never matches.
        assert api.get(path).json()["last_refusal"] == MISMATCH
        time.sleep(1.5)  # anything left to write is written
        writes = _writes(world)
        counts = [at for tbl, op, at in writes if (tbl, op) == ("webhook_endpoints", "UPDATE")]
        # The counts were written at most once a second, however long the flood took
        # on a loaded machine: never once per delivery.
        gaps = [later - earlier for earlier, later in itertools.pairwise(counts)]
        assert counts, writes
        assert all(gap >= 0.9 for gap in gaps), gaps
        assert len(counts) <= elapsed + 2, (len(counts), elapsed)
        # Nothing else is written per delivery, nor for the id that is no connection:
        # what the serving process wrote meanwhile is its own (worker heartbeats, the
        # catch-up run the stored secret asked for).
        by_table = Counter(table for table, _, _ in writes)
        assert by_table["webhook_events"] == 0, by_table
        assert max(by_table.values()) < probes / 2, (by_table, elapsed)
        assert api.get(path).json()["refused_deliveries"] == flood


TOO_LARGE = "body over the size limit"


def _peak_rss_kib(pid: int) -> int:
    """The process's peak resident memory (``VmHWM``), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for process {pid}")


def test_oversized_deliveries_are_counted_for_a_connection_not_for_unknown_ids(
    home: Path,
) -> None:
    with (
        start_sandbox(customers=0, seed=43) as sandbox,
        hooked(home, sandbox, workers=0) as world,
        world.api() as api,
    ):
        endpoints.set_secret(world.app, world.connection.id, WRONG)
        bare = connections.add_stripe(world.app, "bare", sandbox.secret_key, sandbox.url, 9.0)
        headers = {"content-type": "application/json", "stripe-signature": "t=1,v1=00"}
        huge = b'{"id":"evt_huge","type":"customer.updated","pad":"' + b"x" * 600_000 + b'"}'

        def streamed(mib: int) -> Iterator[bytes]:  # no Content-Length: counted as read
            for _ in range(mib * 16):
                yield b"x" * 65_536

        def post(connection_id: str, content: bytes | Iterator[bytes]) -> httpx.Response:
            url = world.receiver(connection_id)
            return httpx.post(url, content=content, headers=headers, timeout=60)

        rss_before = _peak_rss_kib(world.served.pid)
        declared = post(world.connection.id, huge)  # Content-Length over the limit
        chunked = post(world.connection.id, streamed(64))
        assert (declared.status_code, chunked.status_code) == (413, 413), chunked.text
        # The body was never read whole: 64 MiB streamed, the server's peak barely moved.
        grown_mib = (_peak_rss_kib(world.served.pid) - rss_before) / 1024
        assert grown_mib < 16, grown_mib
        # Ids that name no connection, or one without a secret, get the same answer,
        # and are counted nowhere.
        for other in ("conn_not_one", bare.id, world.pipeline.id):
            answer = post(other, huge)
            assert (answer.status_code, answer.json()) == (413, declared.json()), other

        path = f"/connections/{world.connection.id}/webhook"
        wait_for(lambda: api.get(path).json()["refused_deliveries"] == 2, 10, "the counts")
        time.sleep(1.5)  # anything else counted would be written by now
        shown: dict[str, Any] = api.get(path).json()
        assert shown["refused_deliveries"] == 2
        assert (shown["latest_delivery"], shown["last_refusal"]) == ("refused", TOO_LARGE)
        assert "over 512 KiB" in shown["warning"]
        assert "evt_huge" not in str(shown)  # the body is never echoed
        assert api.get(f"/connections/{bare.id}/webhook").json()["refused_deliveries"] is None

        # The CLI reads the same status from the store, as lines and as JSON.
        cli = doc("connections", "webhook", world.connection.id)
        assert (cli["refused_deliveries"], cli["last_refusal"]) == (2, TOO_LARGE)
        assert cli["warning"] == shown["warning"]
        lines = invoke("connections", "webhook", world.connection.id)
        assert lines.exit_code == 0, lines.output
        assert f"last_refusal: {TOO_LARGE}\n" in lines.stdout
        assert f"warning: {shown['warning']}\n" in lines.stdout
