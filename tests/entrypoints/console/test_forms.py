"""Every console form is Post/Redirect/Get: a post that changes something answers with a
redirect, and what it has to say (a new token above all) is shown once by the page it
lands on, never carried in a URL. Reloading that page, or going back to it, posts
nothing again."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
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
