"""Listing customers through the official Stripe SDK: order, cursors, windows, errors."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
import stripe

from headwater.sandbox.testing import RunningSandbox


def _all_raw(sandbox: RunningSandbox, **params: Any) -> list[dict[str, Any]]:
    """Every customer by plain HTTP paging (the yardstick for the SDK's view)."""
    out: list[dict[str, Any]] = []
    auth = {"Authorization": f"Bearer {sandbox.secret_key}"}
    query: dict[str, Any] = {"limit": 100, **params}
    while True:
        page = httpx.get(f"{sandbox.url}/v1/customers", params=query, headers=auth).json()
        out.extend(page["data"])
        if not page["has_more"]:
            return out
        query["starting_after"] = page["data"][-1]["id"]


def test_auto_paging_returns_every_customer_once_newest_first(seeded, sdk) -> None:
    client = sdk(seeded)
    seen = list(client.v1.customers.list({"limit": 30}).auto_paging_iter())
    ids = [c.id for c in seen]
    assert len(ids) == seeded.stats()["customers"] == 437
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("cus_") and len(i) >= 18 for i in ids)
    created = [c.created for c in seen]
    assert created == sorted(created, reverse=True)
    assert ids == [c["id"] for c in _all_raw(seeded)]


def test_created_windows_partition_the_set(seeded, sdk) -> None:
    client = sdk(seeded)
    everyone = _all_raw(seeded)
    oldest, newest = everyone[-1]["created"], everyone[0]["created"]
    bounds = [oldest + (newest + 1 - oldest) * i // 5 for i in range(6)]
    collected: list[str] = []
    for low, high in itertools.pairwise(bounds):
        page = client.v1.customers.list({"limit": 100, "created": {"gte": low, "lt": high}})
        window = list(page.auto_paging_iter())
        assert all(low <= c.created < high for c in window)
        collected.extend(c.id for c in window)
    assert len(collected) == len(set(collected)) == len(everyone)
    assert set(collected) == {c["id"] for c in everyone}


def test_created_filters_exact_and_bounds(seeded) -> None:
    everyone = _all_raw(seeded)
    pivot = everyone[len(everyone) // 2]["created"]
    exact = _all_raw(seeded, created=pivot)
    assert exact
    assert all(c["created"] == pivot for c in exact)
    gt = _all_raw(seeded, **{"created[gt]": pivot})
    lte = _all_raw(seeded, **{"created[lte]": pivot})
    assert len(gt) + len(lte) == len(everyone)
    assert all(c["created"] > pivot for c in gt)
    assert all(c["created"] <= pivot for c in lte)


def test_ending_before_pages_towards_newer(seeded) -> None:
    everyone = _all_raw(seeded)
    auth = {"Authorization": f"Bearer {seeded.secret_key}"}
    cursor = everyone[50]["id"]
    page = httpx.get(
        f"{seeded.url}/v1/customers",
        params={"limit": 10, "ending_before": cursor},
        headers=auth,
    ).json()
    assert [c["id"] for c in page["data"]] == [c["id"] for c in everyone[40:50]]
    assert page["has_more"] is True
    top = httpx.get(
        f"{seeded.url}/v1/customers",
        params={"limit": 10, "ending_before": everyone[5]["id"]},
        headers=auth,
    ).json()
    assert [c["id"] for c in top["data"]] == [c["id"] for c in everyone[:5]]
    assert top["has_more"] is False


def test_email_filter_is_exact(seeded, sdk) -> None:
    everyone = _all_raw(seeded)
    shared = {}
    for c in everyone:
        if c["email"]:
            shared.setdefault(c["email"], []).append(c["id"])
    email, ids = max(shared.items(), key=lambda item: len(item[1]))
    found = sdk(seeded).v1.customers.list({"email": email, "limit": 100})
    assert sorted(c.id for c in found.data) == sorted(ids)


def test_retrieve_and_list_shape(seeded) -> None:
    auth = {"Authorization": f"Bearer {seeded.secret_key}", "Stripe-Version": "2024-06-20"}
    response = httpx.get(f"{seeded.url}/v1/customers?limit=3", headers=auth)
    body = response.json()
    assert response.headers["request-id"].startswith("req_")
    assert response.headers["stripe-version"] == "2024-06-20"
    assert body["object"] == "list"
    assert body["url"] == "/v1/customers"
    assert len(body["data"]) == 3
    assert body["has_more"] is True
    one = httpx.get(f"{seeded.url}/v1/customers/{body['data'][0]['id']}", headers=auth)
    assert one.json() == body["data"][0]


@pytest.mark.parametrize(
    ("query", "param", "message"),
    [
        ("limit=0", "limit", "greater than or equal to 1"),
        ("limit=101", "limit", "less than or equal to 100"),
        ("limit=ten", "limit", "Invalid integer"),
        ("starting_after=cus_nope", "starting_after", "No such customer"),
        ("created[after]=5", "created[after]", "unknown parameter"),
        ("colour=red", "colour", "unknown parameter"),
    ],
)
def test_bad_list_parameters_are_400_naming_the_param(
    seeded, query: str, param: str, message: str
) -> None:
    auth = {"Authorization": f"Bearer {seeded.secret_key}"}
    response = httpx.get(f"{seeded.url}/v1/customers?{query}", headers=auth)
    assert response.status_code == 400
    assert response.headers["request-id"].startswith("req_")
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert message in error["message"]


def test_sdk_sees_invalid_request_for_limit(seeded, sdk) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        sdk(seeded).v1.customers.list({"limit": 500})
    assert caught.value.param == "limit"
    assert caught.value.http_status == 400


def test_keys_and_permissions(seeded, sdk) -> None:
    restricted = sdk(seeded, "rk_test_customers_only")
    assert len(restricted.v1.customers.list({"limit": 2}).data) == 2
    with pytest.raises(stripe.PermissionError) as caught:
        restricted.v1.events.list()
    assert caught.value.http_status == 403
    assert "rak_event_read" in str(caught.value.user_message)
    assert "rk_test_customers_only" not in str(caught.value.user_message)  # masked
    with pytest.raises(stripe.PermissionError):
        restricted.v1.customers.create({"email": "x@example.com"})
    with pytest.raises(stripe.AuthenticationError) as unknown:
        sdk(seeded, "sk_test_not_a_key").v1.customers.list()
    assert unknown.value.http_status == 401


def test_basic_auth_and_missing_key(seeded) -> None:
    ok = httpx.get(f"{seeded.url}/v1/customers?limit=1", auth=("sk_test_sandbox", ""))
    assert ok.status_code == 200
    missing = httpx.get(f"{seeded.url}/v1/customers")
    assert missing.status_code == 401
    assert "API key" in missing.json()["error"]["message"]
    control = httpx.get(f"{seeded.url}/_sandbox/stats")
    assert control.status_code == 401


def test_unknown_path_is_stripe_404(seeded) -> None:
    response = httpx.get(f"{seeded.url}/v1/charges", auth=("sk_test_sandbox", ""))
    assert response.status_code == 404
    assert "Unrecognized request URL" in response.json()["error"]["message"]
