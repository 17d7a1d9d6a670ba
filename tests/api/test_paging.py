"""Lists page with `limit` and `starting_after`, newest first, as
``{"data": [...], "has_more": bool}``: pages are disjoint, in order, and together
the whole list; filters apply before paging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.api.conftest import Tenant

from headwater.adapters.store import runs
from headwater.kernel.records import RecordError, Step
from headwater.sandbox.testing import RunningSandbox


def pages(http: httpx.Client, path: str, limit: int, **params: Any) -> list[list[Any]]:
    """Every page of a list, following `starting_after` until `has_more` is false."""
    out: list[list[Any]] = []
    after: str | None = None
    while True:
        query = params | {"limit": limit} | ({"starting_after": after} if after else {})
        body = http.get(path, params=query).json()
        out.append(body["data"])
        if not body["has_more"]:
            return out
        assert len(body["data"]) == limit
        after = body["data"][-1]["id"]


def ids(found: list[list[dict[str, Any]]]) -> list[str]:
    return [item["id"] for page in found for item in page]


def test_connections_and_pipelines_page_newest_first(
    tenant: Tenant, sandbox: RunningSandbox
) -> None:
    http = tenant.http
    made: Callable[..., str] = lambda path, body: http.post(path, json=body).json()["id"]  # noqa: E731
    connections = [
        made(
            "/connections",
            {
                "kind": "stripe",
                "name": f"c{i}",
                "api_key": sandbox.secret_key,
                "base_url": sandbox.url,
            },
        )
        for i in range(3)
    ]
    pipelines = [
        made("/pipelines", {"connection_id": connections[i % 2], "name": f"p{i}"}) for i in range(5)
    ]
    found = pages(http, "/connections", 2)
    assert [len(p) for p in found] == [2, 1]
    assert ids(found) == connections[::-1]
    found = pages(http, "/pipelines", 2)
    assert [len(p) for p in found] == [2, 2, 1]
    assert ids(found) == pipelines[::-1]
    by_connection = ids(pages(http, "/pipelines", 2, connection_id=connections[0]))
    assert by_connection == [pipelines[4], pipelines[2], pipelines[0]]
    assert ids(pages(http, "/pipelines", 100, connection_id=connections[2])) == []
    # An empty filter names no connection, as an empty pipeline_id on /runs names no
    # pipeline: it was taken as no filter, and every pipeline came back.
    empty = http.get("/pipelines", params={"connection_id": ""})
    assert empty.status_code == 404, empty.text
    assert "no connection with id ''" in empty.json()["error"]["message"]


def test_runs_and_their_errors_page_with_filters(tenant: Tenant, sandbox: RunningSandbox) -> None:
    http = tenant.http
    conn = http.post(
        "/connections",
        json={
            "kind": "stripe",
            "name": "c",
            "api_key": sandbox.secret_key,
            "base_url": sandbox.url,
        },
    ).json()
    first, second = (
        http.post("/pipelines", json={"connection_id": conn["id"], "name": n}).json()
        for n in ("a", "b")
    )
    made = []
    for i in range(23):
        pipeline = first if i % 3 else second
        run = http.post(f"/pipelines/{pipeline['id']}/runs").json()
        assert http.post(f"/runs/{run['id']}/cancel").json()["status"] == "cancelled"
        made.append((pipeline["id"], run["id"]))
    live = http.post(f"/pipelines/{first['id']}/runs").json()["id"]

    everything = pages(http, "/runs", 10)
    assert [len(p) for p in everything] == [10, 10, 4]
    assert ids(everything) == [live, *[r for _, r in made][::-1]]
    of_first = ids(pages(http, "/runs", 4, pipeline_id=first["id"]))
    assert of_first == [live, *[r for p, r in made if p == first["id"]][::-1]]
    # The same under the pipeline (it answered 405: only POST, run now, was there).
    assert ids(pages(http, f"/pipelines/{first['id']}/runs", 4)) == of_first
    assert ids(pages(http, f"/pipelines/{first['id']}/runs", 5, status="queued")) == [live]
    assert http.get("/pipelines/pl_000000000000/runs").status_code == 404
    assert ids(pages(http, "/runs", 7, status="queued")) == [live]
    assert len(ids(pages(http, "/runs", 100, status="cancelled"))) == 23
    assert ids(pages(http, "/runs", 5, status="succeeded")) == []

    errors = [RecordError(f"cus_{i:03}", Step.TRANSFORM, f"bad {i}") for i in range(45)]
    runs.add_errors(tenant.app.engine, live, errors)
    found = pages(http, f"/runs/{live}/errors", 20)
    assert [len(p) for p in found] == [20, 20, 5]
    flat = [e for page in found for e in page]
    assert [(e["source_id"], e["step"], e["message"]) for e in flat] == [
        (e.source_id, "transform", e.message) for e in errors
    ]
    shown = http.get(f"/runs/{live}", params={"errors": 3}).json()["errors"]
    assert [e["source_id"] for e in shown] == ["cus_000", "cus_001", "cus_002"]
    # A cursor that is no error of this run (another run's, or none) is bad input on
    # `starting_after`, as on every list: it was taken as a position and gave a page.
    other = made[0][1]
    runs.add_errors(tenant.app.engine, other, [RecordError("cus_x", Step.READ, "other")])
    theirs = http.get(f"/runs/{other}/errors").json()["data"][0]["id"]
    for cursor in (theirs, "999999"):
        response = http.get(f"/runs/{live}/errors", params={"starting_after": cursor})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == "starting_after"
        assert cursor in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "path", ["/connections", "/pipelines", "/runs", "/tokens", "/workspaces", "/profiles"]
)
def test_an_unknown_cursor_is_one_error_on_every_list(tenant: Tenant, path: str) -> None:
    """`starting_after` naming nothing of the list is bad input on that parameter,
    the same answer on every list (it was 404 on four of them, 422 on two)."""
    response = tenant.http.get(path, params={"starting_after": "nope_000000"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_input"
    assert error["field"] == "starting_after"
    assert "nope_000000" in error["message"]
