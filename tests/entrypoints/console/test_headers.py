"""The headers of every console answer (`console.headers`): never framed by another
site, scripts from this site's files only, and no page kept in a cache (a new API token
came back from the back/forward cache); the pages still work under that policy."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect
from tests.entrypoints.console.conftest import EMAIL, PASSWORD, Site, sign_in

pytestmark = pytest.mark.slow

POLICY = (
    "frame-ancestors 'none'; script-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'"
)


def _guarded(answer: httpx.Response) -> None:
    assert answer.headers.get("x-frame-options") == "DENY", answer.url
    assert answer.headers.get("content-security-policy") == POLICY, answer.url
    assert answer.headers.get("x-content-type-options") == "nosniff", answer.url
    assert answer.headers.get("referrer-policy") == "same-origin", answer.url


def test_pages_fragments_and_files_carry_the_headers(site: Site) -> None:
    conn = site.add_source("Headed")
    pipeline = site.add_pipeline(conn.id, "Headed pipeline")
    with httpx.Client(base_url=site.url, timeout=30) as client:
        anonymous = [client.get("/sign-in"), client.get("/sources")]  # a page, a redirect
        signed_in = client.post(
            "/sign-in", data={"email": EMAIL, "password": PASSWORD}, headers={"Origin": site.url}
        )
        pages = [client.get("/tokens"), client.get(f"/connections/{conn.id}/pipelines")]
        fragment = client.post(
            f"/pipelines/{pipeline.id}/schedule",
            data={"schedule": "1h"},
            headers={"Origin": site.url, "HX-Request": "true"},
        )
        missing = client.get("/runs/run_none")
        static = client.get("/static/console.css")
    assert [a.status_code for a in anonymous] == [200, 303]
    assert signed_in.status_code == 303
    assert [p.status_code for p in pages] == [200, 200]
    assert fragment.status_code == 200
    assert fragment.text.startswith("<span id=")  # the "Next run" line, not a page
    assert missing.status_code == 404
    assert static.status_code == 200
    for answer in (*anonymous, signed_in, *pages, fragment, missing):
        _guarded(answer)
        assert answer.headers.get("cache-control") == "no-store", answer.url
    _guarded(static)
    assert "no-store" not in static.headers.get("cache-control", "")


def test_the_pages_work_under_the_policy(page: Page, site: Site) -> None:
    """Every kind of script the console runs (htmx with hx-vals, live progress, the code
    editor, the preview, the chart, the copy button) runs with no policy violation."""
    refused: list[str] = []

    def violation(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("console", violation)
    conn = site.add_source("Policed")
    site.add_pipeline(conn.id, "Policed pipeline")
    sign_in(page, site.url)
    answer = page.goto(f"{site.url}/connections/{conn.id}/pipelines")
    assert answer is not None
    assert answer.headers["content-security-policy"] == POLICY
    row = page.get_by_role("row", name="Policed pipeline")
    switch = row.get_by_role("switch", name="Enable Policed pipeline")
    switch.click()
    expect(row.get_by_role("button", name="Run now")).to_be_disabled()
    row.get_by_role("switch", name="Enable Policed pipeline").click()
    row.get_by_role("button", name="Run now").click()
    expect(row.get_by_role("status")).to_contain_text("Import completed", timeout=30_000)
    row.get_by_label("Schedule").select_option("1h")
    expect(row.get_by_text(re.compile("Next run"))).to_be_visible()
    row.get_by_role("link", name="Manage...").click()
    page.get_by_role("tab", name="JavaScript").click()
    expect(page.get_by_role("textbox", name="JavaScript source")).to_contain_text("transform")
    page.get_by_role("button", name="Reload").click()
    expect(page.get_by_text(re.compile(r"customers scanned"))).to_be_visible()
    page.goto(site.url + "/runs")
    chart = page.get_by_role("img", name=re.compile("Chart of customers imported"))
    expect(chart.locator("canvas")).to_have_count(1)  # uPlot drew it
    page.goto(site.url + "/tokens")
    page.get_by_label("Token name").fill("Policed")
    page.get_by_role("button", name="Create token").click()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("status").filter(has_text="Copied")).to_be_visible()
    assert refused == []
