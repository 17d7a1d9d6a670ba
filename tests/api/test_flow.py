"""The seed's whole flow by API alone, through a real ``headwater serve`` over HTTP:
connect the sandbox, add a filtered and mapped pipeline, run it now, follow the run to
its end, read its counters and list the profiles.  Once on the embedded defaults
(SQLite store, DuckDB warehouse) and once on PostgreSQL for both.

The expected counts come from the sandbox itself (every customer read page by page),
so the test checks what landed, not only that something did.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.conftest import cli_token, follow
from tests.conftest import PG_URL, fresh_schema, pg_schema_url
from tests.serving import Service, start_serve

from headwater.sandbox.testing import RunningSandbox

COUNTRIES = ["IT", "FR", "DE"]
FILTER = {
    "logical": "and",
    "conditions": [
        {"property": "address.country", "operator": "is one of", "values": COUNTRIES},
        {"property": "email", "operator": "is not empty", "values": []},
    ],
}
MAPPING = {
    "kind": "mapping",
    "mapping": {
        "email": "lower(trim(email))",
        "phone": "phone",
        "address.country": "address.country",
        "created_at": "from_unix(created)",
    },
}


def expected(sandbox: RunningSandbox) -> tuple[int, set[str]]:
    """How many customers the sandbox has, and the ids the filter keeps."""
    seen, kept, after = 0, set(), None
    with httpx.Client(base_url=sandbox.url, auth=(sandbox.secret_key, "")) as stripe:
        while True:
            params: dict[str, Any] = {"limit": 100} | ({"starting_after": after} if after else {})
            page = stripe.get("/v1/customers", params=params).json()
            for c in page["data"]:
                seen += 1
                country = (c.get("address") or {}).get("country")
                if country in COUNTRIES and c.get("email"):
                    kept.add(c["id"])
            if not page["has_more"]:
                return seen, kept
            after = page["data"][-1]["id"]


@pytest.fixture(params=["sqlite-duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Service, str, str]]:
    """A real `headwater serve` with 2 workers, its token, and the warehouse to use."""
    home = tmp_path / "home"
    if request.param == "postgres":
        with fresh_schema("flow") as store, fresh_schema("wh") as warehouse:
            url = pg_schema_url(store)
            token = cli_token(home, url)
            with start_serve(home, database_url=url) as served:
                yield served, token, f"{PG_URL}?schema={warehouse}"
    else:
        token = cli_token(home, None)
        with start_serve(home) as served:
            yield served, token, ""


@pytest.mark.slow
def test_the_whole_flow_by_api_alone(
    service: tuple[Service, str, str], sandbox: RunningSandbox
) -> None:
    served, token, warehouse_url = service
    headers = {"Authorization": f"Bearer {token}"}
    total, kept = expected(sandbox)
    with httpx.Client(base_url=f"{served.url}/api/v1", headers=headers, timeout=60) as http:
        if warehouse_url:
            assert http.put("/warehouse", json={"url": warehouse_url}).status_code == 200
        conn = http.post(
            "/connections",
            json={
                "kind": "stripe",
                "name": "Sandbox",
                "api_key": sandbox.secret_key,
                "base_url": sandbox.url,
                "requests_per_second": 80,
            },
        )
        assert conn.status_code == 201, conn.text
        assert conn.json()["api_key"] == "sk_test_…dbox"
        created = http.post(
            "/pipelines",
            json={
                "connection_id": conn.json()["id"],
                "name": "Europe",
                "description": "customers in IT, FR, DE with an email",
                "filter": FILTER,
                "transformation": MAPPING,
                "incremental": True,
                "schedule": "off",
                "enabled": True,
            },
        )
        assert created.status_code == 201, created.text
        pipeline = created.json()
        assert pipeline["save_warnings"] == []
        assert pipeline["next_run_kind"] == "full"
        queued = http.post(f"/pipelines/{pipeline['id']}/runs")
        assert queued.status_code == 202, queued.text
        assert queued.json()["status"] == "queued"

        run = follow(http, queued.json()["id"])

        assert run["status"] == "succeeded", run
        assert run["outcome"] == "succeeded"
        counters = run["counters"]
        assert counters["read"] == total
        assert counters["filtered_out"] == total - len(kept)
        assert counters["written"] == len(kept)
        assert counters["failed_total"] == 0
        assert http.get("/warehouse").json()["identities"] == len(kept)
        listed = http.get("/runs", params={"pipeline_id": pipeline["id"]}).json()
        assert [r["id"] for r in listed["data"]] == [run["id"]]
        assert http.get(f"/pipelines/{pipeline['id']}").json()["last_run"]["status"] == "succeeded"

        profiles, after = [], None
        while True:
            page = http.get(
                "/profiles", params={"limit": 100} | ({"starting_after": after} if after else {})
            ).json()
            profiles += page["data"]
            if not page["has_more"]:
                break
            after = page["data"][-1]["id"]
        assert sum(p["identity_count"] for p in profiles) == len(kept)
        assert all(p["values"]["address_country"] in COUNTRIES for p in profiles)
        one = http.get(f"/profiles/{profiles[0]['id']}").json()
        assert {i["source_id"] for i in one["identities"]} <= kept
