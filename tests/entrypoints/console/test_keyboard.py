"""The guide's main steps with the keyboard alone (Tab, Enter, Space, arrows; never a
click), in Chromium against a real server and the sandbox: sign in, Sources, the
catalogue's Stripe card, Add source (with "Advanced"), Add pipeline... with the editor's
tabs "Mappings | JavaScript | Python", then the pipelines table's Enable switch, Run now,
the Schedule select, the ⋮ menu and the delete dialog with typing the name.

Every element Tab lands on must show where focus is (an outline or a ring), and an
action that re-renders a table row leaves focus in that row."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from tests.entrypoints.console.conftest import EMAIL, PASSWORD, Site

pytestmark = pytest.mark.slow

#: The focused element's problem, if any: not focused, not on screen, or no visible mark.
FOCUS_PROBLEM = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "focus is nowhere (on the page's body)";
  const box = el.getBoundingClientRect();
  const html = el.outerHTML.slice(0, 120);
  if (box.width === 0 || box.height === 0) return "focused but not displayed: " + html;
  const marked = (e) => {
    const s = getComputedStyle(e);
    return (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none";
  };
  const editor = el.closest(".cm-editor");  // CodeMirror marks its whole editor
  return marked(el) || (editor && marked(editor)) ? "" : "no visible focus: " + html;
}"""


def _focus_is_visible(page: Page) -> None:
    """Focus is on a displayed element that marks it (waiting a little: an editor may
    mark itself on its next frame)."""
    try:
        page.wait_for_function(f"() => !({FOCUS_PROBLEM})()", timeout=5_000)
    except PlaywrightTimeoutError:
        problem = page.evaluate(FOCUS_PROBLEM)
        raise AssertionError(problem) from None


def _press_and_wait(page: Page, key: str, path: str) -> None:
    """Press `key`, which saves something at `path`, and wait until the page shows it."""
    with page.expect_response(re.compile(re.escape(path) + "$")) as saved:
        page.keyboard.press(key)
    assert saved.value.status == 200, saved.value.text()
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


def _focused(target: Locator) -> bool:
    return bool(target.evaluate("el => el === document.activeElement"))


def _tab_to(page: Page, target: Locator, key: str = "Tab", limit: int = 40) -> None:
    """Press `key` until `target` has focus, checking each stop shows its focus."""
    for _ in range(limit):
        if _focused(target):
            _focus_is_visible(page)
            return
        page.keyboard.press(key)
        _focus_is_visible(page)
    raise AssertionError(f"{target} is not reachable with {key} ({limit} presses)")


def _sign_in_and_add_source(page: Page, site: Site) -> None:
    page.goto(site.url + "/sources")
    expect(page.get_by_label("Email")).to_be_focused()  # the sign-in page starts there
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/sources")

    _tab_to(page, page.get_by_role("link", name="Add a new source ⊕"))
    page.keyboard.press("Enter")
    _tab_to(page, page.get_by_label("Search connectors"))
    page.keyboard.type("stripe")
    stripe_card = page.get_by_role("button", name="Stripe")
    _tab_to(page, stripe_card)
    page.keyboard.press("Enter")
    expect(stripe_card).to_have_attribute("aria-expanded", "true")
    _tab_to(page, page.get_by_role("link", name="Add source..."))
    page.keyboard.press("Enter")

    _tab_to(page, page.get_by_label("API key"))
    page.keyboard.type(site.sandbox.secret_key)
    _tab_to(page, page.get_by_text("Advanced"))
    page.keyboard.press("Enter")  # opens the section
    _tab_to(page, page.get_by_label("Stripe API URL"))
    page.keyboard.press("Control+A")
    page.keyboard.type(site.sandbox.url)
    _tab_to(page, page.get_by_role("button", name="Add", exact=True))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Pipelines")).to_be_visible()


def _add_pipeline(page: Page) -> None:
    _tab_to(page, page.get_by_role("link", name="Add pipeline..."))
    page.keyboard.press("Enter")
    _tab_to(page, page.get_by_label("Name", exact=True))
    page.keyboard.type("By keyboard")

    # The tabs are one tab stop; arrows move between them, Enter or Space chooses.
    mappings, javascript, python = (
        page.get_by_role("tab", name=n) for n in ("Mappings", "JavaScript", "Python")
    )
    _tab_to(page, mappings)
    page.keyboard.press("ArrowRight")
    expect(javascript).to_be_focused()
    _focus_is_visible(page)
    expect(mappings).to_have_attribute("aria-selected", "true")  # moving never switches
    page.keyboard.press("ArrowRight")
    expect(python).to_be_focused()
    page.keyboard.press("Enter")
    expect(python).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel")).to_contain_text("def transform(customer")
    page.keyboard.press("Tab")  # into the code editor, which gives Tab back (no trap)
    expect(page.get_by_role("textbox", name="Python source")).to_be_focused()
    _focus_is_visible(page)
    page.keyboard.press("Shift+Tab")
    expect(python).to_be_focused()  # the tab stop is the chosen tab
    page.keyboard.press("Home")
    expect(mappings).to_be_focused()
    page.keyboard.press(" ")
    expect(mappings).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel")).to_contain_text("Use suggested mapping")

    _tab_to(page, page.get_by_role("button", name="Use suggested mapping"))
    page.keyboard.press("Enter")
    expect(page.get_by_label("Expression for email")).not_to_have_value("")
    _tab_to(page, page.get_by_role("button", name="Add", exact=True), key="Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("row", name="By keyboard")).to_be_visible()


def _in_row(row: Locator) -> bool:
    return bool(row.evaluate("row => row.contains(document.activeElement)"))


def test_the_main_flow_by_keyboard_alone(page: Page, site: Site) -> None:
    _sign_in_and_add_source(page, site)
    _add_pipeline(page)
    row = page.get_by_role("row", name="By keyboard")

    switch = row.get_by_role("switch", name="Enable By keyboard")
    _tab_to(page, switch)
    _press_and_wait(page, " ", "/enable")
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(row.get_by_role("button", name="Run now")).to_be_disabled()
    expect(switch).to_be_focused()  # the row was re-rendered; focus stayed on the switch
    _press_and_wait(page, "Enter", "/enable")
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(switch).to_be_focused()

    run_now = row.get_by_role("button", name="Run now")
    _tab_to(page, run_now)
    page.keyboard.press("Enter")
    expect(row.get_by_role("status").filter(has_text="Import completed")).to_be_visible(
        timeout=90_000
    )
    assert _in_row(row), "focus left the row when the run began or ended"
    _focus_is_visible(page)

    schedule = row.get_by_label("Schedule")
    _tab_to(page, schedule)
    # Off → 5m → 15m → 30m → 1h as fast as keys go: each choice is saved as it is made,
    # and those made while one is being saved are not lost; the last one wins.
    with page.expect_response(
        lambda r: r.url.endswith("/schedule") and r.request.post_data == "schedule=1h"
    ) as last:
        for _ in range(4):
            page.keyboard.press("ArrowDown")
    assert last.value.status == 200
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    expect(schedule).to_have_value("1h")
    expect(schedule).to_be_focused()
    page.reload()
    expect(row.get_by_label("Schedule")).to_have_value("1h")

    more = row.get_by_role("button", name="More actions for By keyboard")
    _tab_to(page, more)
    page.keyboard.press("Enter")
    menu = page.get_by_role("menu", name="Actions for By keyboard")
    expect(menu.get_by_role("menuitem", name="Run now")).to_be_focused()
    _focus_is_visible(page)
    page.keyboard.press("End")
    expect(menu.get_by_role("menuitem", name="Delete")).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Delete By keyboard?")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")  # closed, focus goes back to the ⋮ button
    expect(dialog).to_be_hidden()
    expect(more).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowUp")  # from the first item, wraps to the last: Delete
    page.keyboard.press("Enter")
    confirm = dialog.get_by_label("Type the pipeline's name to confirm")
    expect(confirm).to_be_focused()
    _focus_is_visible(page)
    page.keyboard.type("By keyboard")
    _tab_to(page, dialog.get_by_role("button", name="Delete"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="deleted")).to_contain_text("By keyboard")
    expect(page.get_by_role("row", name="By keyboard")).to_have_count(0)


def test_a_skip_link_leads_past_the_header(page: Page, site: Site) -> None:
    page.goto(site.url + "/sources")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Sources")).to_be_visible()
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    _focus_is_visible(page)
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # the first control of the page, past the header's links
    expect(page.get_by_role("link", name="Add a new source ⊕")).to_be_focused()
