"""Keys and the change stream against the Stripe sandbox over real HTTP."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.connectors.conftest import source_for, stripe_client

from headwater.adapters.connectors.contract import HistoryExpired, PermissionMissing
from headwater.adapters.connectors.stripe import (
    InvalidKey,
    KeyAccess,
    RetriesExhausted,
    SourceUnreachable,
    StripeSettings,
    verify_key,
)
from headwater.adapters.connectors.stripe.changes import SETTLE
from headwater.adapters.connectors.stripe.keys import VERIFY_NETWORK_RETRIES
from headwater.kernel.errors import InvalidInput
from headwater.sandbox.testing import RunningSandbox


def test_verify_key_reports_what_the_key_can_read(sandbox: RunningSandbox) -> None:
    full = verify_key(sandbox.url, sandbox.secret_key)
    assert full == KeyAccess(
        customers_read=True, events_read=True, livemode=False, account_id="acct_1Headwater0000"
    )
    both = verify_key(sandbox.url, "rk_test_customers_events")
    assert both.events_read
    limited = verify_key(sandbox.url, "rk_test_customers_only")
    assert limited == KeyAccess(
        customers_read=True, events_read=False, livemode=False, account_id="acct_1Headwater0000"
    )


def test_unknown_key_is_invalid_and_never_echoed(sandbox: RunningSandbox) -> None:
    key = "sk_test_NotARealKey123456789"
    with pytest.raises(InvalidKey) as info:
        verify_key(sandbox.url, key)
    assert key not in info.value.message
    assert "invalid or revoked" in info.value.message
    assert "Request-Id req_" in info.value.message


def test_key_without_customers_read_names_the_permission(sandbox: RunningSandbox) -> None:
    with pytest.raises(PermissionMissing) as info:
        verify_key(sandbox.url, "rk_test_events_only")
    assert info.value.permission == "Customers: Read"
    assert "'Customers: Read'" in info.value.message


def test_unreachable_stripe_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SourceUnreachable) as info:
        verify_key(
            f"http://127.0.0.1:{port}", "sk_test_abcdefgh12345", timeout=1.0, backoff_base=0.01
        )
    assert info.value.transient
    # A person waits for this check: it gave up after a run's 7 attempts (~25 s).
    assert info.value.attempts == VERIFY_NETWORK_RETRIES + 1 < StripeSettings().max_retries + 1
    assert f"127.0.0.1:{port}" in info.value.message


def test_reading_changes_without_events_read(sandbox: RunningSandbox) -> None:
    with source_for(sandbox, api_key="rk_test_customers_only") as source:
        with pytest.raises(PermissionMissing) as info:
            source.event_position()
        assert info.value.permission == "Events: Read"
        with pytest.raises(PermissionMissing):
            list(source.read_changes({"event_id": None, "created": 0}))


def test_changes_after_a_position_arrive_merged_and_in_order(sandbox: RunningSandbox) -> None:
    client = stripe_client(sandbox)
    existing = [c.id for c in client.v1.customers.list(params={"limit": 3}).data]
    with source_for(sandbox) as source:
        start = source.event_position()
        assert start["event_id"] is None  # generated customers have no events
        fresh = client.v1.customers.create(params={"email": "new@example.com"})
        client.v1.customers.update(fresh.id, params={"name": "Renamed"})
        gone = client.v1.customers.create(params={"email": "brief@example.com"})
        client.v1.customers.delete(gone.id)
        client.v1.customers.update(existing[0], params={"name": "Updated Once"})
        client.v1.customers.delete(existing[1])
        sandbox.advance_clock(SETTLE + 1)  # settled: the position goes past them
        batches = list(source.read_changes(start))
        # One page of changes, then how far the read got (`through`: no changes).
        assert [len(b.changes) > 0 for b in batches] == [True, False]
        kinds = {c.source_id: c.kind for c in batches[0].changes}
        assert kinds == {
            fresh.id: "created",
            gone.id: "deleted",
            existing[0]: "updated",
            existing[1]: "deleted",
        }
        by_id = {c.source_id: c for c in batches[0].changes}
        assert by_id[fresh.id].record is not None
        assert by_id[fresh.id].record["name"] == "Renamed"
        assert by_id[existing[1]].record is None
        now = source.event_position()
        assert batches[0].position == {**now, "newest": now["event_id"]}
        assert batches[1].position["through"] > now["created"]  # every event before: read

        # From the saved position only what happened since is read.
        client.v1.customers.update(existing[2], params={"name": "Later"})
        sandbox.advance_clock(SETTLE + 1)
        later = list(source.read_changes(batches[-1].position))
        assert [(c.source_id, c.kind) for b in later for c in b.changes] == [
            (existing[2], "updated")
        ]
        assert [c for b in source.read_changes(later[-1].position) for c in b.changes] == []


def test_many_changes_cost_about_one_call_per_hundred(sandbox: RunningSandbox) -> None:
    client = stripe_client(sandbox)
    ids = [c.id for c in client.v1.customers.list(params={"limit": 100}).auto_paging_iter()]
    client.v1.customers.update(ids[0], params={"name": "first"})
    with source_for(sandbox) as source:
        start = source.event_position()
        assert start["event_id"] is not None
        # 149 updates from several threads (order among them does not matter), then
        # one more for ids[0], which must win as the latest state.
        headers = {"Authorization": f"Bearer {sandbox.secret_key}"}
        with httpx.Client(base_url=sandbox.url, headers=headers) as http:

            def rename(item: tuple[int, str]) -> None:
                http.post(f"/v1/customers/{item[1]}", data={"name": f"bulk {item[0]}"})

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(rename, enumerate(ids[1:100] + ids[1:51])))
        client.v1.customers.update(ids[0], params={"name": "final"})
        before = source.api_calls
        batches = list(source.read_changes(start))
        calls = source.api_calls - before
    assert [b.extra["events"] for b in batches] == [100, 50, 0]  # then how far it read
    assert calls == 2
    assert sum(b.api_calls for b in batches) == 2
    stamps = [b.position["created"] for b in batches]
    assert stamps == sorted(stamps)
    last = {c.source_id: c for b in batches for c in b.changes}
    assert last[ids[0]].record is not None
    assert last[ids[0]].record["name"] == "final"
    assert len(last) == 100


def test_expired_position_raises_history_expired(sandbox: RunningSandbox) -> None:
    client = stripe_client(sandbox)
    customer = client.v1.customers.create(params={"email": "old@example.com"})
    with source_for(sandbox) as source:
        position = source.event_position()
        sandbox.advance_clock(31 * 86400)
        client.v1.customers.update(customer.id, params={"name": "much later"})
        with pytest.raises(HistoryExpired) as info:
            list(source.read_changes(position))
    assert "30 days" in info.value.message
    assert "full run" in info.value.message


def test_unknown_event_cursor_raises_history_expired(sandbox: RunningSandbox) -> None:
    with source_for(sandbox) as source:
        position = source.event_position()
        with pytest.raises(HistoryExpired, match="evt_doesnotexist"):
            list(
                source.read_changes(
                    {"event_id": "evt_doesnotexist", "created": position["created"]}
                )
            )


def test_malformed_positions_are_rejected(sandbox: RunningSandbox) -> None:
    with source_for(sandbox) as source, pytest.raises(InvalidInput) as info:
        list(source.read_changes({"event_id": None, "created": "yesterday"}))
    assert info.value.location == "position.created"
    assert "must be unix seconds, got 'yesterday'" in info.value.message


def test_verify_key_rides_out_429s_like_a_run(sandbox: RunningSandbox) -> None:
    """`connections add` through 15% 429s succeeds every time (it gave up after 2); its
    three requests (customers, events, account) are each retried."""
    sandbox.control(rate_limit_error_rate=0.15)
    sandbox.reset_stats()
    for _ in range(40):
        access = verify_key(sandbox.url, sandbox.secret_key, backoff_base=0.01)
        assert access.customers_read
    stats = sandbox.stats()
    assert stats["rate_limited"] > 0
    assert stats["requests"] == 3 * 40 + stats["rate_limited"]


def test_verify_key_gives_up_after_as_many_attempts_as_a_run(sandbox: RunningSandbox) -> None:
    sandbox.control(rate_limit_error_rate=1.0)
    sandbox.reset_stats()
    with pytest.raises(RetriesExhausted) as info:
        verify_key(sandbox.url, sandbox.secret_key, backoff_base=0.01)
    attempts = StripeSettings().max_retries + 1
    assert info.value.attempts == attempts == sandbox.stats()["rate_limited"]
    assert f"gave up after {attempts} attempts" in info.value.message


def test_a_full_read_started_ahead_asks_for_its_first_page_at_once(sandbox: RunningSandbox) -> None:
    """`read_full_ahead` asks for the first page at once, on a thread: the request is
    sent before `read_full` or `event_position` is called, whose answer then times the
    position, and the read goes on from it; every customer comes once, and every call
    is counted."""
    client = stripe_client(sandbox)
    expected = {c.id for c in client.v1.customers.list(params={"limit": 100}).auto_paging_iter()}
    sandbox.reset_stats()
    with source_for(sandbox) as source:
        source.read_full_ahead()
        for _ in range(200):  # the first page is asked for with nothing else called
            if sandbox.stats()["requests"]:
                break
            time.sleep(0.01)
        assert sandbox.stats()["by_path"] == {"GET /v1/customers": 1}
        pages = source.read_full()
        position = source.event_position()
        ids = [record["id"] for page in pages for record in page]
        calls = source.api_calls
    assert "event_id" in position  # taken from the answer read ahead (None: no events yet)
    assert len(ids) == len(set(ids))
    assert set(ids) == expected
    assert calls == sandbox.stats()["requests"]


def test_a_full_read_started_ahead_and_never_used_is_closed_with_the_source(
    sandbox: RunningSandbox,
) -> None:
    source = source_for(sandbox)
    source.read_full_ahead()
    reads = list(source._reads)
    source.close()  # a run that failed before its read: nothing is left running
    assert reads
    assert not any(read.running for read in reads)
    assert source._ahead is None
