"""The pipeline editor's parts the guide's flow does not reach: nested groups with
"or", unary operators without values, map keys (``metadata.<key>``), Python with its
syntax errors shown as you type, and the preview of an unsaved definition."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect
from tests.entrypoints.console.conftest import Site, sign_in

from headwater.sandbox.testing import start_sandbox
from headwater.services import connections
from headwater.services.pipelines import saving

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def connection_id(site: Site) -> str:
    return site.add_source("Stripe").id


def test_nested_groups_and_typed_rows(page: Page, site: Site, connection_id: str) -> None:
    sign_in(page, site.url)
    page.goto(f"{site.url}/connections/{connection_id}/pipelines/new")
    page.get_by_label("Combine conditions with").select_option("or")
    page.get_by_role("button", name="Add condition").click()
    page.get_by_label("Property").fill("phone")
    page.get_by_label("Operator").select_option("is null")
    row = page.get_by_role("listitem").filter(has=page.get_by_label("Property"))
    expect(row.get_by_role("textbox", name="Value")).to_have_count(0)  # unary: no value
    page.get_by_role("button", name="Add group").click()
    group = page.get_by_role("group", name="Condition group")
    group.get_by_label("Customers in this group match").select_option("and")
    group.get_by_role("button", name="Add condition").click()
    group.get_by_label("Property").fill("metadata.plan")
    expect(group.get_by_label("Operator")).to_contain_text("starts with")
    group.get_by_label("Operator").select_option("is")
    group.get_by_label("Value", exact=True).fill("pro")
    group.get_by_role("button", name="Add condition").click()
    group.get_by_label("Property").nth(1).fill("balance")
    group.get_by_label("Operator").nth(1).select_option("is between")
    group.get_by_label("From", exact=True).fill("0")
    group.get_by_label("To", exact=True).fill("500")
    page.get_by_role("button", name="Use suggested mapping").click()
    expect(page.get_by_label("Expression for email")).not_to_have_value("")
    with page.expect_request(re.compile(r"/editor/preview$")) as sent:
        page.get_by_role("button", name="Reload").click()
    assert json.loads(sent.value.post_data or "{}")["filter"] == {
        "logical": "or",
        "conditions": [
            {"property": "phone", "operator": "is null"},
            {
                "logical": "and",
                "conditions": [
                    {"property": "metadata.plan", "operator": "is", "values": ["pro"]},
                    {"property": "balance", "operator": "is between", "values": [0, 500]},
                ],
            },
        ],
    }
    expect(page.get_by_text(re.compile(r"customers scanned"))).to_be_visible()


def test_python_errors_show_as_you_type(page: Page, site: Site, connection_id: str) -> None:
    sign_in(page, site.url)
    page.goto(f"{site.url}/connections/{connection_id}/pipelines/new")
    page.get_by_role("tab", name="Python").click()  # nothing edited yet: no question
    expect(page.get_by_role("tab", name="Python")).to_have_attribute("aria-selected", "true")
    code = page.get_by_role("textbox", name="Python source")
    expect(code).to_contain_text("def transform(customer: dict)")
    code.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text("def transform(customer):\n    return {'email': customer['email']\n")
    expect(page.get_by_role("tabpanel").get_by_role("alert")).to_contain_text("line 2: SyntaxError")
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(
        "def transform(customer):\n    print('seen', customer['id'])\n"
        "    return {'email': customer['email']}\n"
    )
    expect(page.get_by_role("tabpanel").get_by_role("alert")).to_have_count(0)  # no error
    page.get_by_role("button", name="Reload").click()
    expect(page.get_by_role("heading", name="Logs")).to_be_visible()
    expect(page.locator("#preview-output")).to_contain_text("seen cus_")


# Every other customer gets a created_at that is no datetime: the preview's five samples
# hold both a row that lands and one that fails.
CONVERTED = """seen = []
def transform(customer):
    seen.append(customer["id"])
    when = customer["created"] if len(seen) % 2 else "<b>soon</b>"
    return {"email": customer["email"], "created_at": when,
            "address": {"city": (customer.get("address") or {}).get("city")}}
"""


def test_the_preview_shows_converted_rows_and_conversion_errors(
    page: Page, site: Site, connection_id: str
) -> None:
    sign_in(page, site.url)
    page.goto(f"{site.url}/connections/{connection_id}/pipelines/new")
    page.get_by_role("tab", name="Python").click()
    page.get_by_role("textbox", name="Python source").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(CONVERTED)
    page.get_by_role("button", name="Reload").click()
    samples = page.get_by_role("article")
    landed = samples.filter(has=page.get_by_role("heading", name="Warehouse row")).first
    # Unix seconds as the warehouse stores them: a datetime; the object as its columns.
    expect(landed).to_contain_text(re.compile(r'"created_at": "\d{4}-\d\d-\d\dT[0-9:]{8}\+00:00"'))
    expect(landed).to_contain_text('"address_city": ')
    expect(landed).not_to_contain_text(re.compile(r'"created_at": \d'))
    expect(landed.get_by_role("alert")).to_have_count(0)
    failed = samples.filter(has=page.get_by_role("heading", name="Returned, not written")).first
    expect(failed.get_by_role("alert")).to_have_text(
        "validate: property 'created_at' (datetime): cannot convert \"<b>soon</b>\""
    )
    assert "&lt;b&gt;soon" in failed.inner_html()  # text, never markup
    expect(failed.get_by_role("heading", name="Warehouse row")).to_have_count(0)


def test_a_live_run_shows_progress_and_can_be_cancelled(page: Page, site: Site) -> None:
    with start_sandbox(customers=3000, seed=5, latency_ms=250) as slow:
        app = site.app()
        try:
            conn = connections.add_stripe(app, "Slow Stripe", slow.secret_key, slow.url, 50.0)
            saving.save_new(app, conn.id, "Everyone")
        finally:
            app.close()
        sign_in(page, site.url)
        page.goto(f"{site.url}/connections/{conn.id}/pipelines")
        row = page.get_by_role("row", name="Everyone")
        row.get_by_role("button", name="Run now").click()
        expect(row.get_by_role("status")).to_contain_text("Importing…")
        expect(row.get_by_role("button", name="Run now")).to_be_disabled()  # one live run
        page.get_by_role("link", name="Runs").nth(1).click()  # the source's Runs tab
        live = page.get_by_role("table", name="Runs").get_by_role("row").nth(1)
        live.get_by_role("button", name="Cancel").click()
        expect(page.get_by_role("status").filter(has_text="Import cancelled")).to_be_visible(
            timeout=30_000
        )
        expect(page.get_by_role("table", name="Counters")).to_be_visible()


def test_the_more_menu_works_by_keyboard(page: Page, site: Site, connection_id: str) -> None:
    site.add_pipeline(connection_id, "Keyboard")
    sign_in(page, site.url)
    page.goto(f"{site.url}/connections/{connection_id}/pipelines")
    more = page.get_by_role("button", name="More actions for Keyboard")
    more.focus()
    page.keyboard.press("Enter")
    menu = page.get_by_role("menu", name="Actions for Keyboard")
    expect(more).to_have_attribute("aria-expanded", "true")
    expect(menu.get_by_role("menuitem", name="Run now")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Manage")).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(more).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowUp")  # wraps to the last item
    expect(menu.get_by_role("menuitem", name="Delete")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog", name="Delete Keyboard?")).to_be_visible()
    page.keyboard.press("Escape")  # a modal dialog closes on Escape
    expect(page.get_by_role("dialog", name="Delete Keyboard?")).to_be_hidden()
