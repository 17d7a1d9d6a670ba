"""A refused htmx action (a 4xx answer): a fragment answer (the row with its reason) is
swapped in like any other, and the page's status line tells the reason in one short
line. htmx 2 swapped no 4xx answer, and the status line held the text of a whole page
(its header, navigation and links included)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from tests.entrypoints.console.conftest import Site, sign_in

from headwater.kernel.errors import NotFound
from headwater.services.pipelines import manage, saving

pytestmark = pytest.mark.slow


def test_a_refused_run_now_shows_the_row_with_its_reason(page: Page, site: Site) -> None:
    conn = site.add_source("Refusing")
    pipeline = site.add_pipeline(conn.id, "Switched off")
    sign_in(page, site.url)
    page.goto(f"{site.url}/connections/{conn.id}/pipelines")
    row = page.get_by_role("row", name="Switched off")
    expect(row.get_by_role("button", name="Run now")).to_be_enabled()
    app = site.app()
    try:  # disabled by someone else, meanwhile
        saving.save_changes(app, pipeline.id, manage.PipelineChanges(enabled=False))
    finally:
        app.close()
    with page.expect_response(re.compile(r"/run$")) as answer:
        row.get_by_role("button", name="Run now").click()
    assert answer.value.status == 409
    reason = f"pipeline {pipeline.id} is disabled; enable it before running it"
    expect(row.get_by_role("alert")).to_have_text(reason)  # the row, as it is now
    expect(row.get_by_role("switch", name="Enable Switched off")).to_have_attribute(
        "aria-checked", "false"
    )
    expect(row.get_by_role("button", name="Run now")).to_be_disabled()
    expect(page.get_by_role("status").first).to_have_text(reason)


def test_a_refusal_page_is_told_in_one_line(page: Page, site: Site) -> None:
    conn = site.add_source("Vanishing")
    pipeline = site.add_pipeline(conn.id, "Deleted meanwhile")
    sign_in(page, site.url)
    page.goto(f"{site.url}/connections/{conn.id}/pipelines")
    app = site.app()
    try:
        manage.delete(app, pipeline.id)
        with pytest.raises(NotFound) as gone:
            manage.get(app, pipeline.id)
    finally:
        app.close()
    page.get_by_role("switch", name="Enable Deleted meanwhile").click()
    expect(page.get_by_role("status").first).to_have_text(f"Not found: {gone.value.message}")
    expect(page.get_by_role("row", name="Deleted meanwhile")).to_have_count(1)  # not swapped
    expect(page.get_by_role("link", name="Back to Sources")).to_have_count(0)


def test_a_refused_schedule_leaves_the_row_working(page: Page, site: Site) -> None:
    conn = site.add_source("Scheduled")
    site.add_pipeline(conn.id, "Hourly later")
    sign_in(page, site.url)
    page.goto(f"{site.url}/connections/{conn.id}/pipelines")
    row = page.get_by_role("row", name="Hourly later")
    schedule = row.get_by_label("Schedule")
    schedule.evaluate("s => s.add(new Option('every 7 minutes', '7m'))")
    with page.expect_response(re.compile(r"/schedule$")) as refused:
        schedule.select_option("7m")
    assert refused.value.status == 400
    expect(page.get_by_role("status").first).to_contain_text("7m")
    expect(page.get_by_role("status").first).not_to_contain_text("Sign out")
    expect(schedule).to_have_value("off")
    schedule.select_option("1h")  # the "Next run" line is still there to be updated
    expect(row.get_by_text(re.compile(r"^Next run \d{4}-"))).to_be_visible()
