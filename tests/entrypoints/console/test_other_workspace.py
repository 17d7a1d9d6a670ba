"""Every console route naming an object answers another workspace's object as not
found (404, never its page, never a change), over HTTP of a real ``headwater serve``.
The routes are found by walking the console application, so a route added later that
names an object cannot be forgotten here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.entrypoints.console.conftest import EMAIL, PASSWORD
from tests.entrypoints.test_serve_every_route import _routes
from tests.serving import start_serve

from headwater.entrypoints.console import create_console
from headwater.entrypoints.environment import settings_from_env
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import connections, profiles
from headwater.services.app import App
from headwater.services.auth import invitations, tokens, users, workspaces
from headwater.services.pipelines import manage, runner, saving

pytestmark = pytest.mark.slow

THEIRS = "Their private"
#: What each form or script would send (the field every form has, and a plausible
#: value for each, so that the only reason to refuse is whose object it is).
FIELDS = {
    "name": f"{THEIRS} renamed",
    "api_key": "sk_test_replaced",
    "enabled": "false",
    "schedule": "5m",
    "url": "https://evil.example.com",
    "secret": "whsec_" + "e" * 32,
    "confirm": f"{THEIRS} pipeline",
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-others")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=5, seed=9) as running:
        yield running


def _their_objects(home: Path, sandbox: RunningSandbox) -> dict[str, str]:
    """A connection, pipeline, finished run, profile and token of another workspace."""
    app = App.open(settings_from_env({"HEADWATER_HOME": str(home)}))
    try:
        users.add_user(app, EMAIL, PASSWORD)  # a member of the default workspace only
        theirs = app.in_workspace(workspaces.add_workspace(app, "Another company").id)
        conn = connections.add_stripe(theirs, f"{THEIRS} source", sandbox.secret_key, sandbox.url)
        pipeline = saving.save_new(theirs, conn.id, f"{THEIRS} pipeline").pipeline
        run = runner.run_pipeline(theirs, pipeline.id)
        assert run.status == "succeeded", run.message
        [profile] = [p["id"] for p in profiles.list_profiles(theirs, limit=1)]
        _raw, token = tokens.create_token(theirs, f"{THEIRS} token")
        # Theirs to someone else: the signed-in user may neither answer nor revoke it.
        invitation = invitations.invite(theirs, "someone.else@example.com")
        return {
            "workspace_id": theirs.workspace_id,
            "connection_id": conn.id,
            "pipeline_id": pipeline.id,
            "run_id": run.id,
            "profile_id": profile,
            "token_id": token.id,
            "invitation_id": invitation.id,
        }
    finally:
        app.close()


def _snapshot(home: Path, ids: dict[str, str]) -> list[object]:
    app = App.open(settings_from_env({"HEADWATER_HOME": str(home)}))
    try:
        theirs = app.in_workspace(ids["workspace_id"])
        conn = connections.get_connection(theirs, ids["connection_id"])
        pipeline = manage.get(theirs, ids["pipeline_id"])
        return [
            conn.name,
            conn.api_key_masked,
            pipeline.name,
            pipeline.enabled,
            pipeline.schedule,
            runner.get_run(theirs, ids["run_id"]).status,
            tokens.get_token(theirs, ids["token_id"]).revoked_at,
            len(manage.list_pipelines(theirs)),
            [i.status for i in invitations.list_invitations(theirs)[0]],
        ]
    finally:
        app.close()


def test_every_route_naming_an_object_answers_another_workspaces_as_not_found(
    home: Path, sandbox: RunningSandbox
) -> None:
    ids = _their_objects(home, sandbox)
    app = App.open(settings_from_env({"HEADWATER_HOME": str(home)}))
    try:
        named = sorted({(m, p) for m, p in _routes(create_console(app).router.routes) if "{" in p})
    finally:
        app.close()
    assert ("GET", "/runs/{run_id}/events") in named  # the live stream too
    before = _snapshot(home, ids)
    wrong = []
    with (
        start_serve(home, workers=0) as served,
        httpx.Client(base_url=served.url, timeout=30, headers={"Origin": served.url}) as client,
    ):
        assert client.post("/sign-in", data={"email": EMAIL, "password": PASSWORD}).is_redirect
        for method, path in named:
            concrete = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
            answers = (
                [client.get(concrete)]
                if method == "GET"
                else [client.post(concrete, data=FIELDS), client.post(concrete, json=FIELDS)]
            )
            # A post's body of the kind its route does not take (the editor's JSON, the
            # forms' fields) may be refused as such (400) before any lookup.
            statuses = [a.status_code for a in answers]
            shown = any(THEIRS in a.text for a in answers)
            if 404 not in statuses or not set(statuses) <= {400, 404} or shown:
                wrong += [f"{method} {path}: {a.status_code} {a.text[:300]}" for a in answers]
    assert wrong == []
    assert _snapshot(home, ids) == before
