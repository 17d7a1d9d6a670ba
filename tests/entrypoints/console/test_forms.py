"""Every console form is Post/Redirect/Get: a post that changes something answers with a
redirect, and what it has to say (a new token above all) is shown once by the page it
lands on, never carried in a URL. Reloading that page, or going back to it, posts
nothing again."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import APIResponse, Locator, Page, Route, expect
from playwright.sync_api import Error as PlaywrightError
from tests.entrypoints.console.conftest import Site, sign_in

from headwater.services.auth import tokens

pytestmark = pytest.mark.slow


def test_reloading_after_creating_a_token_creates_no_second_one(page: Page, site: Site) -> None:
    sign_in(page, site.url)
    page.goto(site.url + "/tokens")
    page.get_by_label("Token name").fill("Reloaded")
    with page.expect_response(re.compile(r"/tokens$")) as posted:
        page.get_by_role("button", name="Create token").click()
    token = page.get_by_label("New token").input_value()
    assert re.fullmatch(r"hw_\w+", token)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("status").filter(has_text="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token
    assert page.url == site.url + "/tokens"  # the token is never in a URL
    page.reload()
    expect(page.get_by_role("row", name=re.compile("^Reloaded"))).to_have_count(1)
    expect(page.get_by_label("New token")).to_have_count(0)  # shown once only
    assert token not in page.content()
    page.go_back()
    page.go_forward()
    assert site.token_names().count("Reloaded") == 1
    assert posted.value.request.method == "POST"
    assert posted.value.status == 303  # the answer to the post is a redirect


def test_a_token_shown_once_belongs_to_the_session_that_made_it(page: Page, site: Site) -> None:
    """Another session of the same user, opening the tokens page right after, is not
    shown the new token; the session that made it is, once."""
    sign_in(page, site.url)
    other = page.context.browser.new_context()  # type: ignore[union-attr]
    try:
        spy = other.new_page()
        sign_in(spy, site.url)
        page.goto(site.url + "/tokens")
        page.get_by_label("Token name").fill("Mine alone")
        with page.expect_request(re.compile(r"/tokens$")):
            page.get_by_role("button", name="Create token").click()
        spy.goto(site.url + "/tokens")
        expect(spy.get_by_role("row", name=re.compile("^Mine alone"))).to_have_count(1)
        expect(spy.get_by_label("New token")).to_have_count(0)
        expect(page.get_by_label("New token")).to_have_value(re.compile(r"^hw_"))
    finally:
        other.close()


def test_actions_answer_with_a_redirect_and_say_what_they_did(page: Page, site: Site) -> None:
    conn = site.add_source("Renamed later")
    sign_in(page, site.url)
    page.goto(f"{site.url}/connections/{conn.id}/settings")
    page.get_by_label("Name", exact=True).fill("Renamed source")
    with page.expect_response(re.compile(r"/rename$")) as posted:
        page.get_by_role("button", name="Rename").click()
    assert posted.value.status == 303
    expect(page.get_by_role("status").filter(has_text="Renamed")).to_contain_text("Renamed source")
    page.reload()  # the message was for once; nothing is posted again
    expect(page.get_by_role("status").filter(has_text="Renamed")).to_have_count(0)

    page.goto(site.url + "/warehouse")
    with page.expect_response(re.compile(r"/warehouse/test$")) as tested:
        page.get_by_role("button", name="Test").click()
    assert tested.value.status == 303
    expect(page.get_by_role("status").filter(has_text="Connected")).to_contain_text("duckdb")
    assert page.url == site.url + "/warehouse"
    page.reload()
    expect(page.get_by_role("status").filter(has_text="Connected")).to_have_count(0)


def test_the_tokens_page_shows_every_token_a_page_at_a_time(page: Page, site: Site) -> None:
    """Past 100 tokens the list goes on on a next page (it stopped at the newest 100,
    the older ones out of reach, revocation included)."""
    app = site.app()
    try:
        for i in range(101):
            tokens.create_token(app, f"Paged {i:03}")
    finally:
        app.close()
    sign_in(page, site.url)
    page.goto(site.url + "/tokens")
    rows = page.get_by_role("table", name="API tokens").get_by_role("row")
    expect(rows).to_have_count(101)  # the header and 100 tokens
    expect(rows.nth(1)).to_contain_text("Paged 100")  # newest first
    pages = page.get_by_role("navigation", name="Pages of tokens")
    expect(pages.get_by_role("link", name="First page")).to_have_count(0)
    pages.get_by_role("link", name="Next page").click()
    expect(page.get_by_role("row", name=re.compile("^Paged 000"))).to_have_count(1)
    page.get_by_role("button", name="Revoke Paged 000").click()
    expect(page.get_by_role("status")).to_contain_text("Paged 000")
    page.goto(site.url + "/tokens?after=tok_unknown")  # no such token: the first page
    expect(rows.nth(1)).to_contain_text("Paged 100")


def _held_posts(page: Page, path: str) -> list[tuple[Route, APIResponse]]:
    """Posts to `path` reach the server at once, and their answers are held back until
    `_deliver`: a second click lands while the first is on its way, as with a slower
    server (this one answers before a double click's second click)."""
    held: list[tuple[Route, APIResponse]] = []

    def hold(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        held.append((route, route.fetch(max_redirects=0)))

    page.route(re.compile(re.escape(path) + "$"), hold)
    return held


def _deliver(page: Page, held: list[tuple[Route, APIResponse]]) -> None:
    for route, answer in held:
        with contextlib.suppress(PlaywrightError):  # a post the browser gave up on
            route.fulfill(response=answer)
    page.unroute_all()


def _twice(page: Page, button: Locator, held: list[tuple[Route, APIResponse]]) -> None:
    """Click `button`, and click it again once the first post has reached the server
    (with the mouse: a locator would wait for the first post's page)."""
    box = button.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(x, y)
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the first click posted nothing"
    page.mouse.click(x, y)
    page.wait_for_timeout(300)  # time for a second post to be sent


def test_a_double_click_on_create_token_makes_one_token(page: Page, site: Site) -> None:
    sign_in(page, site.url)
    page.goto(site.url + "/tokens")
    page.get_by_label("Token name").fill("Clicked twice")
    held = _held_posts(page, "/tokens")
    _twice(page, page.get_by_role("button", name="Create token"), held)
    assert len(held) == 1
    _deliver(page, held)
    expect(page.get_by_label("New token")).to_have_count(1)
    expect(page.get_by_role("row", name=re.compile("^Clicked twice"))).to_have_count(1)
    assert site.token_names().count("Clicked twice") == 1


def test_a_double_click_on_delete_deletes_once(page: Page, site: Site) -> None:
    """The pipeline's Delete, then the source's: the second post found nothing left to
    delete and showed a "Not found" page."""
    conn = site.add_source("Twice deleted")
    site.add_pipeline(conn.id, "Deleted twice")
    sign_in(page, site.url)
    page.goto(f"{site.url}/connections/{conn.id}/pipelines")
    page.get_by_role("button", name="More actions for Deleted twice").click()
    page.get_by_role("menuitem", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete Deleted twice?")
    dialog.get_by_label("Type the pipeline's name to confirm").fill("Deleted twice")
    _once(page, dialog.get_by_role("button", name="Delete"), "/delete")
    expect(page.get_by_role("status").filter(has_text="deleted")).to_contain_text("Deleted twice")
    expect(page.get_by_role("heading", name="Not found")).to_have_count(0)
    page.goto(f"{site.url}/connections/{conn.id}/settings")
    danger = page.get_by_role("region", name="Danger zone")
    danger.get_by_label("Type the source's name to confirm").fill("Twice deleted")
    _once(page, danger.get_by_role("button", name="Delete source"), "/delete")
    expect(page.get_by_role("status").filter(has_text="deleted")).to_contain_text("Twice deleted")
    expect(page.get_by_role("heading", name="Not found")).to_have_count(0)


def _once(page: Page, button: Locator, path: str, told: str | None = None) -> None:
    """A double click on `button` posts to `path` once, and its answer is shown."""
    held = _held_posts(page, path)
    button.scroll_into_view_if_needed()  # clicked with the mouse: it must be in view
    _twice(page, button, held)
    assert len(held) == 1, f"{path} was posted {len(held)} times"
    _deliver(page, held)
    if told is not None:
        expect(page.get_by_role("main")).to_contain_text(told)
    expect(page.get_by_role("alert")).to_have_count(0)  # no refusal of a second post


def _revoke(page: Page, site: Site) -> None:
    app = site.app()
    try:
        tokens.create_token(app, "Revoked once")
    finally:
        app.close()
    page.goto(site.url + "/tokens")
    _once(page, page.get_by_role("button", name="Revoke Revoked once"), "/revoke", "revoked")


def _source_settings(page: Page, site: Site, name: str) -> None:
    conn = site.add_source(name)
    page.goto(f"{site.url}/connections/{conn.id}/settings")


def _rename_and_rotate(page: Page, site: Site) -> None:
    _source_settings(page, site, "Renamed once")
    page.get_by_label("Name", exact=True).fill("Renamed once, really")
    _once(page, page.get_by_role("button", name="Rename"), "/rename", "Renamed to")
    page.get_by_label("New API key").fill(site.sandbox.secret_key)
    _once(page, page.get_by_role("button", name="Rotate key"), "/rotate-key", "API key replaced")


def _webhook(page: Page, site: Site) -> None:
    """Register with Stripe (twice made two endpoints there), remove, set up by hand."""
    _source_settings(page, site, "Hooked once")
    webhook = page.get_by_role("region", name="Webhook")
    register = webhook.get_by_role("button", name="Register with Stripe")
    _once(page, register, "/webhook/register", "Registered with Stripe")
    _once(page, webhook.get_by_role("button", name="Remove"), "/webhook/remove", "Webhook removed")
    webhook.get_by_label("Signing secret").fill("whsec_" + "a" * 32)
    save = webhook.get_by_role("button", name="Save signing secret")
    _once(page, save, "/webhook/secret", "Signing secret saved")


def _model(page: Page, site: Site) -> None:
    """Add, rename and drop a property: a second post of each was refused."""
    page.goto(site.url + "/model")
    page.get_by_label("Name", exact=True).fill("once_added")
    _once(page, page.get_by_role("button", name="Add property"), "/model", "once_added")
    page.get_by_label("Property", exact=True).select_option("once_added")
    page.get_by_label("New name").fill("once_renamed")
    _once(page, page.get_by_role("button", name="Rename"), "/model/rename", "once_renamed")
    page.get_by_label("Property to drop").select_option("once_renamed")
    page.get_by_label("Type its name to confirm").fill("once_renamed")
    _once(page, page.get_by_role("button", name="Drop"), "/model/drop")
    expect(page.get_by_role("row", name=re.compile("once_"))).to_have_count(0)


def _identity(page: Page, site: Site) -> None:
    """Saving and rebuilding rebuild every profile: twice did it twice."""
    page.goto(site.url + "/identity")
    _once(page, page.get_by_role("button", name="Save"), "/identity", "Identity resolution saved")
    rebuild = page.get_by_role("button", name="Rebuild profiles")
    _once(page, rebuild, "/identity/rebuild", "Profiles rebuilt")


@pytest.mark.parametrize("forms", [_revoke, _rename_and_rotate, _webhook, _model, _identity])
def test_a_double_click_on_a_settings_form_posts_once(
    page: Page, site: Site, forms: Callable[[Page, Site], None]
) -> None:
    sign_in(page, site.url)
    forms(page, site)


def test_a_form_sent_once_is_usable_again_after_a_refusal_or_shown_again(
    page: Page, site: Site
) -> None:
    """A form answered by its page with an error can be sent again; one shown again as it
    was left (Back, from the back-forward cache) too, its button no longer busy."""
    sign_in(page, site.url)
    page.goto(site.url + "/model")
    add = page.get_by_role("button", name="Add property")
    page.get_by_label("Name", exact=True).fill("email")  # there is one already: refused
    add.click()
    expect(page.get_by_role("alert")).to_contain_text("email")
    page.get_by_label("Name", exact=True).fill("once_again")
    add.click()
    expect(page.get_by_role("row", name=re.compile("^once_again"))).to_have_count(1)

    page.get_by_label("Property to drop").select_option("once_again")
    page.get_by_label("Type its name to confirm").fill("once_again")
    drop = page.get_by_role("button", name="Drop")
    # An answer that leaves the page as it is (no content), as the page is when the
    # browser shows it again: sent, its button busy.
    page.route(re.compile(r"/model/drop$"), lambda route: route.fulfill(status=204))
    drop.click()
    expect(drop).to_be_disabled()
    expect(drop).to_have_text("Drop…")
    page.unroute_all()
    # What the browser fires when it shows the page again from its cache (Playwright's
    # Chromium does not keep one).
    page.evaluate("window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")
    expect(drop).to_be_enabled()
    expect(drop).to_have_text("Drop")
    drop.click()
    expect(page.get_by_role("row", name=re.compile("^once_again"))).to_have_count(0)
