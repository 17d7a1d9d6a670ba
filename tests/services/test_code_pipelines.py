"""JavaScript and Python transformations in real runs and previews (issue 5)."""

from __future__ import annotations

from functools import partial

import pytest
import stripe
from tests.services.conftest import connect

from headwater.kernel.errors import InvalidInput
from headwater.sandbox.testing import RunningSandbox
from headwater.services.app import App
from headwater.services.pipelines import definition, manage, preview, runner

JS = """
function transform(customer) {
  if (!customer.email) return null;                       // skipped
  if (customer.balance < 0) throw new Error("negative balance " + customer.balance);
  const [first, ...rest] = (customer.name || "").trim().split(" ");
  console.log("seen " + customer.id);
  return {email: customer.email.trim().toLowerCase(), first_name: first || null,
          last_name: rest.join(" ") || null, created_at: customer.created,
          "address.country": customer.address ? customer.address.country : null};
}
"""
PY = """
def transform(customer):
    if not customer.get("email"):
        return None
    if customer["balance"] < 0:
        raise ValueError(f"negative balance {customer['balance']}")
    first, _, last = (customer.get("name") or "").strip().partition(" ")
    print("seen", customer["id"])
    return {"email": customer["email"].strip().lower(), "first_name": first or None,
            "last_name": last or None, "created_at": customer["created"],
            "address": {"country": (customer.get("address") or {}).get("country")}}
"""


@pytest.mark.parametrize(("kind", "source"), [("javascript", JS), ("python", PY)])
def test_code_transformations_skip_fail_per_record_and_land_the_rest(
    warehouse_app: App, sandbox: RunningSandbox, kind: str, source: str
) -> None:
    app = warehouse_app
    conn = connect(app, sandbox)
    pipeline = manage.create(app, conn.id, kind, {"kind": kind, "source": source})
    run = runner.run_pipeline(app, pipeline.id)
    assert run.status == "succeeded", run.message
    c = run.counters
    assert c["read"] == 1500
    assert c["skipped"] > 0  # customers without an email
    assert c["failed"]["transform"] > 0  # negative balances raise
    assert c["written"] == 1500 - c["skipped"] - c["failed"]["transform"]
    assert any("negative balance" in e["message"] for e in run.errors)
    wh = app.warehouse()
    rows = wh.identities(pipeline.id)
    wh.close()
    assert len(rows) == c["written"] > 0
    for row in rows:
        assert row["email"] == row["email"].strip().lower()
        assert row["created_at"] is not None


@pytest.mark.slow
def test_a_transformation_that_times_out_batch_after_batch_fails_the_run_fast(
    app: App, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three batches whose every call breaks the time limit (7 calls, then 3 and 3)
    end the run.  At a 1 s limit instead of 5 s, the same calls: 13 s of a spinning
    core instead of 65."""
    monkeypatch.setattr(
        definition, "compile_javascript", partial(definition.compile_javascript, time_limit=1.0)
    )
    conn = connect(app, sandbox)
    spin = "function transform(c) { while (true) {} }"
    pipeline = manage.create(app, conn.id, "spin", {"kind": "javascript", "source": spin})
    run = runner.run_pipeline(app, pipeline.id)
    assert run.status == "failed"
    assert run.message is not None
    assert "batches in a row" in run.message
    assert "time limit of 1 s exceeded" in run.message
    assert run.counters["failed"]["transform"] > 0
    assert run.counters["written"] == 0


@pytest.mark.parametrize(
    ("kind", "source", "where"),
    [
        ("python", "def transform(c):\n    return {'email': c['email']\n", "line"),
        ("python", "def other(c):\n    return c\n", "transform"),
        ("javascript", "function transform(c) { return {; }", "line"),
        ("javascript", "function other(c) { return c; }", "transform"),
    ],
)
def test_bad_code_is_rejected_on_save(
    app: App, sandbox: RunningSandbox, kind: str, source: str, where: str
) -> None:
    conn = connect(app, sandbox)
    with pytest.raises(InvalidInput, match=where):
        manage.create(app, conn.id, "bad", {"kind": kind, "source": source})


@pytest.mark.parametrize(("kind", "source"), [("javascript", JS), ("python", PY)])
def test_preview_runs_unsaved_code_and_shows_its_logs(
    app: App, sandbox: RunningSandbox, kind: str, source: str
) -> None:
    conn = connect(app, sandbox)
    result = preview.preview(
        app, connection_id=conn.id, transformation={"kind": kind, "source": source}, limit=10
    )
    assert len(result.samples) == 10
    statuses = {s.status for s in result.samples}
    assert statuses <= {"ok", "skipped", "error"}
    ok = [s for s in result.samples if s.status == "ok"]
    assert ok
    assert all(s.output and s.output["email"] == s.input["email"].strip().lower() for s in ok)
    assert any(line.endswith(ok[0].source_id) for line in result.logs)


HOG = {
    "javascript": """
function transform(c) {
  if (c.id === "CULPRIT") { const a = []; while (true) { a.push(new Array(1e6).fill(1.5)); } }
  return {email: c.email};
}
""",
    "python": """
def transform(c):
    if c["id"] == "CULPRIT":
        hoard = []
        while True:
            hoard.append(bytearray(10**8))
    return {"email": c["email"]}
""",
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["javascript", "python"])
def test_a_customer_that_exhausts_memory_fails_alone_and_its_page_is_imported(
    app: App, sandbox: RunningSandbox, kind: str
) -> None:
    conn = connect(app, sandbox)
    client = stripe.StripeClient(sandbox.secret_key, base_addresses={"api": sandbox.url})
    culprit = client.v1.customers.list({"limit": 100}).data[41].id  # mid-page
    source = HOG[kind].replace("CULPRIT", culprit)
    pipeline = manage.create(app, conn.id, "hog", {"kind": kind, "source": source})
    run = runner.run_pipeline(app, pipeline.id)
    assert run.status == "succeeded", run.message
    c = run.counters
    assert (c["read"], c["failed"]["transform"], c["written"]) == (1500, 1, 1499)
    [error] = run.errors
    assert error["source_id"] == culprit
    runtime = "JavaScript" if kind == "javascript" else "Python"
    assert error["message"].startswith(f"{runtime} transformation: memory limit of ")
    assert error["message"].endswith(" MB exceeded (transforming this record on its own)")
    wh = app.warehouse()
    ids = {row["_source_id"] for row in wh.identities(pipeline.id)}
    wh.close()
    assert len(ids) == 1499
    assert culprit not in ids
