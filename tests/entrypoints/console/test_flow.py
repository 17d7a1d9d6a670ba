"""The user guide's whole flow in Chromium, against a real server and the sandbox:
sign in → Sources → Add a new source → Stripe → Add source... (a wrong key, then the
right one) → Add pipeline... (a two-condition filter, a one-expression mapping, preview)
→ Add → Run now → the summary's count checked against Stripe and the warehouse →
Enable off disables Run now → Schedule 1h survives a reload → a JavaScript pipeline whose
errors show in its run → Delete by typing the name."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import stripe
from playwright.sync_api import Page, expect
from tests.entrypoints.console.conftest import Site, sign_in

from headwater.services import connections

pytestmark = pytest.mark.slow

SINCE = datetime(2024, 1, 1, tzinfo=UTC)
JS_FAILING = """function transform(customer) {
  if (customer.address && customer.address.country === "IT") {
    throw new Error("no Italian customers here");
  }
  return { email: customer.email };
}"""


def _stripe_customers(site: Site) -> list[stripe.Customer]:
    client = stripe.StripeClient(site.sandbox.secret_key, base_addresses={"api": site.sandbox.url})
    return list(client.v1.customers.list({"limit": 100}).auto_paging_iter())


def _warehouse_count(site: Site, pipeline_id: str) -> int:
    app = site.app()
    url = app.warehouse_url()
    app.close()
    path = url.removeprefix("duckdb:///")
    with duckdb.connect(path, read_only=True) as db:
        row = db.execute(
            "select count(*) from headwater.identities where _pipeline_id = ?", [pipeline_id]
        ).fetchone()
    assert row is not None
    return int(row[0])


def _add_source(page: Page, site: Site, shots: Path) -> None:
    page.get_by_role("link", name="Add a new source ⊕").click()
    page.get_by_label("Search connectors").fill("stri")
    page.get_by_role("button", name="Stripe").click()
    expect(page.get_by_text("Reads your Stripe customers")).to_be_visible()
    page.screenshot(path=shots / "02-catalogue.png")
    page.get_by_role("link", name="Add source...").click()
    expect(page.get_by_label("Name")).to_have_value("Stripe")
    for key, error in (("sk_test_doesnotexist", "rejected"), ("sk_test_sandbox", None)):
        page.get_by_label("API key").fill(key)
        page.get_by_text("Advanced").click()
        page.get_by_label("Stripe API URL").fill(site.sandbox.url)
        page.get_by_label("Requests per second").fill("50")
        # A double click posts the form once: the source is created once (checked below).
        page.get_by_role("button", name="Add").dblclick()
        if error:
            expect(page.get_by_role("alert")).to_contain_text(re.compile(error, re.I))
            expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
            page.screenshot(path=shots / "03-add-source-error.png")
    expect(page.get_by_role("heading", name="Pipelines")).to_be_visible()


def _build_pipeline(page: Page, shots: Path) -> None:
    page.get_by_role("link", name="Add pipeline...").click()
    page.get_by_label("Name", exact=True).fill("EU customers")
    page.get_by_label("Description").fill("Italy and France, since 2024")
    page.get_by_role("button", name="Add condition").click()
    page.get_by_label("Property").fill("address.country")
    page.get_by_label("Operator").select_option("is one of")
    page.get_by_label("Values").fill("IT, FR")
    page.get_by_role("button", name="Add condition").click()
    page.get_by_label("Property").nth(1).fill("created")
    expect(page.get_by_label("Operator").nth(1)).not_to_contain_text("contains")
    page.get_by_label("Operator").nth(1).select_option("is after")
    expect(page.get_by_label("Value", exact=True)).to_have_attribute("type", "date")
    page.get_by_role("button", name="Add", exact=True).click()  # no date yet: refused
    second = page.get_by_role("listitem").filter(has=page.get_by_label("Value", exact=True))
    expect(second.get_by_role("alert")).to_contain_text("expected an ISO 8601 date")
    page.get_by_label("Value", exact=True).fill("2024-01-01")
    email = page.get_by_label("Expression for email")
    email.fill("lower(trim(email)")  # validated as you type: the error shows on its row
    expect(page.get_by_role("row", name=re.compile("^email")).get_by_role("alert")).to_contain_text(
        "line 1"
    )
    email.fill("lower(trim(email))")
    expect(email).not_to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Reload").click()
    sample = page.get_by_role("article").first
    expect(sample.get_by_role("heading", name="Warehouse row")).to_be_visible()
    expect(sample).to_contain_text('"email"')
    page.screenshot(path=shots / "04-pipeline-editor.png", full_page=True)


EXPECTED_DOCUMENT = {
    "name": "EU customers",
    "description": "Italy and France, since 2024",
    "filter": {
        "logical": "and",
        "conditions": [
            {"property": "address.country", "operator": "is one of", "values": ["IT", "FR"]},
            {"property": "created", "operator": "is after", "values": ["2024-01-01"]},
        ],
    },
    "transformation": {"kind": "mapping", "mapping": {"email": "lower(trim(email))"}},
    "incremental": True,
}


def _run_now(page: Page, row_name: str) -> str:
    row = page.get_by_role("row", name=row_name)
    row.get_by_role("button", name="Run now").click()
    summary = row.get_by_role("status").filter(has_text="Import")
    expect(summary).to_contain_text("Import completed", timeout=90_000)
    return summary.inner_text()


def test_the_guide_flow(page: Page, site: Site, shots: Path) -> None:
    page.goto(site.url + "/sources")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.screenshot(path=shots / "00-sign-in.png")
    sign_in(page, site.url)
    expect(page.get_by_text("You don't have any source yet")).to_be_visible()
    page.screenshot(path=shots / "01-sources-empty.png")

    _add_source(page, site, shots)
    connection_url = page.url
    _build_pipeline(page, shots)
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/pipelines")) as sent:
        page.get_by_role("button", name="Add", exact=True).click()
    document = json.loads(sent.value.post_data or "{}")
    page.wait_for_url(connection_url)
    app = site.app()
    assert len(connections.list_connections(app)) == 1  # the double click made one source
    app.close()
    assert document.pop("connection_id").startswith("conn_")
    assert document == EXPECTED_DOCUMENT

    row = page.get_by_role("row", name="EU customers")
    expect(row.get_by_role("cell").nth(0)).to_have_text(
        'address.country is one of ("IT", "FR") and created is after 2024-01-01'
    )
    summary = _run_now(page, "EU customers")
    customers = _stripe_customers(site)
    kept = [
        c
        for c in customers
        if c.address and c.address.country in ("IT", "FR") and c.created > SINCE.timestamp()
    ]
    assert kept, "the sandbox should hold Italian and French customers"
    assert summary == (
        f"Import completed • {len(kept):,} customers imported • "
        f"{len(customers) - len(kept):,} filtered out • no errors"
    )
    pipeline_id = row.get_attribute("id").removeprefix("row-")  # type: ignore[union-attr]
    assert _warehouse_count(site, pipeline_id) == len(kept)
    page.screenshot(path=shots / "05-pipelines.png")

    # Enable off: Run now is disabled, and stays so after a reload.
    switch = row.get_by_role("switch", name="Enable EU customers")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(row.get_by_role("button", name="Run now")).to_be_disabled()
    page.reload()
    expect(row.get_by_role("button", name="Run now")).to_be_disabled()
    row.get_by_role("switch", name="Enable EU customers").click()
    expect(row.get_by_role("button", name="Run now")).to_be_enabled()

    # Schedule 1h survives a reload, with its next run shown.
    with page.expect_response(re.compile(r"/schedule$")) as scheduled:
        row.get_by_label("Schedule").select_option("1h")
    assert scheduled.value.status == 200, scheduled.value.text()
    expect(row.get_by_text("Next run")).to_be_visible()
    page.reload()
    expect(row.get_by_label("Schedule")).to_have_value("1h")
    expect(row.get_by_text("Next run")).to_be_visible()

    # Manage... opens the saved pipeline; Save keeps what was not touched.
    row.get_by_role("link", name="Manage...").click()
    expect(page.get_by_label("Values")).to_have_value("IT, FR")
    page.get_by_label("Description").fill("Italy and France")
    page.get_by_role("button", name="Save").click()
    expect(row.get_by_role("rowheader")).to_contain_text("Italy and France")
    expect(row.get_by_role("cell").nth(0)).to_contain_text('is one of ("IT", "FR")')

    _javascript_pipeline_with_errors(page, site, customers, shots)
    page.goto(connection_url)
    _delete_pipeline(page, site, pipeline_id, shots)
    _tour(page, customers, shots)


def _javascript_pipeline_with_errors(
    page: Page, site: Site, customers: list[stripe.Customer], shots: Path
) -> None:
    page.get_by_role("link", name="Add pipeline...").click()
    page.get_by_label("Name", exact=True).fill("Script")
    page.get_by_role("tab", name="JavaScript").click()
    code = page.get_by_role("textbox", name="JavaScript source")
    expect(code).to_contain_text("function transform(customer)")
    code.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(JS_FAILING)
    # Switching kind after edits asks first; declining keeps the code.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("tab", name="Python").click()
    expect(page.get_by_role("tab", name="JavaScript")).to_have_attribute("aria-selected", "true")
    expect(code).to_contain_text("no Italian customers here")
    page.get_by_role("button", name="Reload").click()
    expect(page.get_by_role("article").first).to_be_visible()
    page.screenshot(path=shots / "06-javascript-editor.png", full_page=True)
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_role("row", name="Script").get_by_role("button", name="Run now").click()
    italians = sum(1 for c in customers if c.address and c.address.country == "IT")
    summary = page.get_by_role("row", name="Script").get_by_role("link", name="Import completed")
    expect(summary).to_contain_text(f"{italians:,} errors", timeout=90_000)
    summary.click()
    errors = page.get_by_role("table", name="First errors")
    expect(errors).to_contain_text("no Italian customers here")
    expect(page.get_by_role("table", name="Counters")).to_contain_text(f"{italians:,}")
    page.screenshot(path=shots / "07-run.png", full_page=True)


def _delete_pipeline(page: Page, site: Site, pipeline_id: str, shots: Path) -> None:
    row = page.get_by_role("row", name="EU customers")
    row.get_by_role("button", name="More actions for EU customers").click()
    row.get_by_role("menuitem", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete EU customers?")
    delete = dialog.get_by_role("button", name="Delete")
    expect(delete).to_be_disabled()
    dialog.get_by_label("Type the pipeline's name to confirm").fill("EU customer")
    expect(delete).to_be_disabled()
    dialog.get_by_label("Type the pipeline's name to confirm").fill("EU customers")
    page.screenshot(path=shots / "08-delete.png")
    delete.click()
    expect(page.get_by_role("row", name="EU customers")).to_have_count(0)
    expect(page.get_by_role("row", name="Script")).to_have_count(1)
    assert _warehouse_count(site, pipeline_id) == 0


def _runs_screen(page: Page, customers: list[stripe.Customer], shots: Path) -> None:
    """The history, and the chart with its text alternative."""
    page.get_by_role("link", name="Runs", exact=True).first.click()
    # The header and the Script run (the deleted pipeline took its runs along).
    expect(page.get_by_role("table", name="Runs").get_by_role("row")).to_have_count(2)
    chart = page.get_by_role("img", name=re.compile("imported and failed per run"))
    expect(chart).to_be_visible()
    # Its text alternative: a sentence read with it, and its data as a table.
    italians = sum(1 for c in customers if c.address and c.address.country == "IT")
    imported = len(customers) - italians
    expect(chart).to_have_accessible_description(
        re.compile(
            rf"^1 finished run, at .+ UTC: {imported:,} customers imported and "
            rf"{italians:,} failed in all; the latest imported {imported:,} and failed "
            rf"{italians:,}\.$"
        )
    )
    page.get_by_text("The chart's data as a table").click()
    data = page.get_by_role("table", name="Customers imported and failed per run")
    expect(data.get_by_role("row")).to_have_count(2)
    expect(data.get_by_role("row").nth(1).get_by_role("cell")).to_have_text(
        ["Script", f"{imported:,}", f"{italians:,}"]
    )
    page.screenshot(path=shots / "09-runs.png", full_page=True)


def _tour(page: Page, customers: list[stripe.Customer], shots: Path) -> None:
    """The workspace's other screens, each with what it must show."""
    _runs_screen(page, customers, shots)

    page.get_by_role("link", name="Customer Model").click()
    page.get_by_label("Name", exact=True).fill("plan")
    page.get_by_label("Description").fill("Billing plan")
    page.get_by_role("button", name="Add property").click()
    expect(page.get_by_role("row", name=re.compile("^plan string Billing plan"))).to_be_visible()
    page.screenshot(path=shots / "10-customer-model.png", full_page=True)
    page.get_by_label("Property", exact=True).select_option("plan")
    page.get_by_label("New name").fill("tier")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("row", name=re.compile("^tier string Billing plan"))).to_be_visible()
    page.get_by_label("Property to drop").select_option("tier")
    page.get_by_label("Type its name to confirm").fill("tier")
    page.get_by_role("button", name="Drop").click()
    expect(page.get_by_role("row", name=re.compile("^tier "))).to_have_count(0)

    page.get_by_role("link", name="Warehouse").click()
    page.get_by_role("button", name="Test").click()
    expect(page.get_by_role("status").filter(has_text="Connected")).to_contain_text("identities")
    page.screenshot(path=shots / "11-warehouse.png")

    # Profiles: the Script pipeline imported every customer outside Italy.
    chosen = next(c for c in customers if c.email and c.address and c.address.country != "IT")
    page.get_by_role("link", name="Profiles").click()
    # A page at a time (the list stopped at its first 200, the others out of reach).
    table = page.get_by_role("table", name="Profiles")
    first_page = table.get_by_role("row").all_inner_texts()
    expect(table.get_by_role("row")).to_have_count(101)  # the header and 100 profiles
    pages = page.get_by_role("navigation", name="Pages of profiles")
    pages.get_by_role("link", name="Next page").click()
    second_page = table.get_by_role("row").all_inner_texts()
    assert not set(first_page[1:]) & set(second_page[1:])
    pages.get_by_role("link", name="First page").click()
    expect(table.get_by_role("row").nth(1).get_by_role("link")).to_have_text(
        first_page[1].split()[0]  # the first profile's id
    )
    # A page after a profile merged away since starts the list again, and says so.
    page.goto(page.url.split("/profiles")[0] + "/profiles?after=pr_merged_since")
    expect(page.get_by_role("status")).to_contain_text("merged or removed since")
    expect(table.get_by_role("row")).to_have_count(101)
    page.get_by_label("Search by any identifier").fill(chosen.email.upper())
    page.get_by_role("button", name="Search").click()
    found = page.get_by_role("table", name="Profiles").get_by_role("row")
    expect(found).to_have_count(2)  # the header and one profile
    page.screenshot(path=shots / "12-profiles.png")
    found.nth(1).get_by_role("link").click()
    identities = page.get_by_role("table", name="Identities")
    expect(identities).to_contain_text(chosen.id)
    expect(identities).to_contain_text("Script")
    page.screenshot(path=shots / "13-profile.png")

    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Token name").fill("CI")
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_label("New token").input_value()
    assert re.fullmatch(r"hw_\w+", token)
    page.screenshot(path=shots / "14-api-tokens.png")
    page.goto(page.url)  # opened afresh, the page never shows the token again
    expect(page.get_by_label("New token")).to_have_count(0)
    assert token not in page.content()
    page.get_by_role("button", name="Revoke CI").click()
    expect(page.get_by_role("row", name=re.compile("^CI"))).to_contain_text("Revoked")
