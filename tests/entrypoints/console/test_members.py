"""Members and invitations in Chromium, over a real ``headwater serve``: a member
invites an email from "Members" (the page says the same whether the email has an
account); the invited user sees it under "Invitations" and becomes a member only by
accepting it; a declined one grants nothing."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect
from tests.entrypoints.console.conftest import EMAIL, PASSWORD, Site, sign_in

from headwater.services.auth import invitations, users, workspaces

pytestmark = pytest.mark.slow

BOB = "bob@example.com"


def _as_bob(browser: Browser, site: Site) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.set_default_timeout(20_000)
    page.goto(site.url + "/members")
    page.get_by_label("Email").fill(BOB)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/members")
    return page


def test_an_invited_user_joins_by_accepting_and_a_declined_invitation_grants_nothing(
    page: Page, browser: Browser, site: Site
) -> None:
    app = site.app()
    try:
        acme = workspaces.add_workspace(app, "Acme")
        globex = workspaces.add_workspace(app, "Globex")
        users.add_user(app.in_workspace(acme.id), BOB, PASSWORD)
        bob_id = users.authenticate(app, BOB, PASSWORD).id  # type: ignore[union-attr]
    finally:
        app.close()
    bob = _as_bob(browser, site)
    try:
        expect(bob.get_by_role("table", name="Members of Acme")).to_contain_text(BOB)
        told = []
        for email in ("Ada@Example.com", "nobody@example.com"):  # an account, and none
            bob.get_by_label("Email").fill(email)
            bob.get_by_role("button", name="Invite").click()
            bob.wait_for_url("**/members")
            flash = bob.get_by_role("status").filter(has_text="Invited")
            told.append(flash.inner_text().replace(email, "EMAIL"))
            row = bob.get_by_role("row").filter(has_text=email)
            expect(row.get_by_role("cell").first).to_have_text("Pending")
        assert told[0] == told[1]  # nothing tells which email has an account
        bob.get_by_role("button", name="Revoke the invitation of nobody@example.com").click()
        row = bob.get_by_role("row").filter(has_text="nobody@example.com")
        expect(row.get_by_role("cell").first).to_have_text("Revoked")
    finally:
        bob.context.close()
    app = site.app()
    try:  # an invitation sent by the operator (`headwater users invite`)
        invitations.invite(app.in_workspace(globex.id), EMAIL)
    finally:
        app.close()

    sign_in(page, site.url)
    # Not a member of Acme yet: no workspace to switch to, two invitations waiting.
    expect(page.get_by_label("Workspace")).to_have_count(0)
    page.get_by_role("link", name="Invitations (2)").click()
    expect(page.get_by_role("row").filter(has_text="Acme")).to_contain_text(BOB)
    page.get_by_role("button", name="Decline the invitation to Globex").click()
    expect(page.get_by_role("status").filter(has_text="declined")).to_be_visible()
    page.get_by_role("button", name="Accept the invitation to Acme").click()
    expect(
        page.get_by_role("status").filter(has_text="You are now a member of Acme")
    ).to_be_visible()
    expect(page.get_by_role("cell", name="No invitations waiting.")).to_be_visible()
    switcher = page.get_by_label("Workspace")
    assert sorted(switcher.locator("option").all_inner_texts()) == ["Acme", "default"]
    switcher.select_option(label="Acme")
    page.get_by_role("button", name="Switch").click()
    page.goto(site.url + "/members")
    members = page.get_by_role("table", name="Members of Acme")
    expect(members).to_contain_text(EMAIL)
    expect(members).to_contain_text(BOB)
    app = site.app()
    try:
        mine = {w.name for w in workspaces.workspaces_of(app, bob_id)}
        assert mine == {"Acme"}
        ada = users.authenticate(app, EMAIL, PASSWORD)
        assert ada is not None
        assert {w.name for w in workspaces.workspaces_of(app, ada.id)} == {"default", "Acme"}
    finally:
        app.close()
