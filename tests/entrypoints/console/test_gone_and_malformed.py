"""Over plain HTTP against a real ``headwater serve`` with no run worker (a queued run
stays queued): what the console answers for objects deleted while a page follows them,
and for forms posted with fields missing, malformed or refused."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator

import httpx
import pytest
from tests.entrypoints.console.conftest import EMAIL, PASSWORD, Site, home_with_user
from tests.serving import start_serve

from headwater.kernel.entities import Pipeline, Run
from headwater.sandbox.testing import start_sandbox
from headwater.services import connections
from headwater.services.auth import workspaces
from headwater.services.pipelines import manage, runner, saving

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The console's server with no run worker: runs enqueued stay queued."""
    home = home_with_user(tmp_path_factory.mktemp("console-idle"))
    with start_sandbox(customers=20, seed=5) as sandbox, start_serve(home, workers=0) as served:
        yield Site(served.url, home, sandbox)


@contextlib.contextmanager
def _signed_in(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=30, headers={"Origin": site.url}) as client:
        answer = client.post("/sign-in", data={"email": EMAIL, "password": PASSWORD})
        assert answer.status_code == 303
        yield client


def _events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(name, data) of each server-sent event read from `lines`."""
    name, data = "", []
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif not line and name:
            yield name, "\n".join(data)
            name, data = "", []


def _queued(site: Site, source: str, name: str) -> tuple[Pipeline, Run]:
    """A new source with a pipeline `name`, and a queued run of it (no worker takes it)."""
    conn = site.add_source(source)
    pipeline = site.add_pipeline(conn.id, name)
    app = site.app()
    try:
        return pipeline, runner.enqueue(app, pipeline.id)
    finally:
        app.close()


@pytest.mark.parametrize("view", ["page", "history", "row"])
def test_a_followed_run_deleted_with_its_pipeline_ends_its_stream(site: Site, view: str) -> None:
    """A queued run's live progress, open on its page (or a history row, or the
    pipelines table), while its pipeline is deleted in another tab: the stream failed
    half way (an exception in the server, the answer cut off), so the page kept saying
    "queued" with nothing to tell it otherwise. It now ends with what replaces it."""
    pipeline, run = _queued(site, f"Followed {view}", f"Deleted while followed ({view})")
    with _signed_in(site) as client:
        with client.stream("GET", f"/runs/{run.id}/events?view={view}") as stream:
            assert stream.status_code == 200
            events = _events(stream.iter_lines())
            assert next(events)[0] == "progress"
            deleted = client.post(
                f"/pipelines/{pipeline.id}/delete", data={"confirm": pipeline.name}
            )
            assert deleted.status_code == 303
            rest = list(events)  # the stream ends, whole (it was cut off)
        assert [name for name, _ in rest][-1:] == ["end"]
        shown = rest[-1][1]
        # The delete cancels the queued run before it removes the pipeline: a poll in
        # between (a loaded machine) ends the stream on that truthful outcome instead
        # (the history's row has no room for why; the page and the table's row say it).
        if 'class="badge cancelled"' in shown or f'id="row-{pipeline.id}"' in shown:
            why = f"Import cancelled: pipeline {pipeline.id} was deleted before the run started"
            assert view == "history" or why in html.unescape(shown)
        elif view == "page":
            assert '<section id="run-panel"' in shown
            assert "This run no longer exists: it was deleted with its pipeline." in shown
        elif view == "history":
            assert shown.startswith(f'<tr id="run-{run.id}">')
            assert "was deleted with its pipeline" in shown
        else:
            assert shown == ""  # the pipeline's row goes with it
        assert client.get(f"/runs/{run.id}").status_code == 404
        assert re.search(r"Not found", client.get(f"/runs/{run.id}/events").text)


def _value(page: str, input_id: str) -> str:
    """The value the page's input `input_id` holds (as the browser reads it)."""
    found = re.search(rf'<input id="{input_id}"[^>]*\svalue="([^"]*)"', page)
    assert found, f"no input #{input_id} with a value"
    return html.unescape(found.group(1))


def test_a_refused_settings_form_comes_back_with_what_was_typed(site: Site) -> None:
    """The Settings tab's forms came back, when refused, with the stored name and the
    URL this browser reaches the service at in place of what was typed (a public base
    URL Stripe refused, a name too long): the edit was lost with the reason beside it."""
    conn = site.add_source("Kept typing")
    here = f"/connections/{conn.id}"
    with _signed_in(site) as client:
        long_name = "Renamed & <kept> " + "n" * 200
        refused = client.post(f"{here}/rename", data={"name": long_name})
        assert refused.status_code == 400
        assert "a connection needs a name of 1 to 200 characters" in refused.text
        assert _value(refused.text, "source-name") == long_name
        typed = "ftp://hooks.example.com/?a=1&b=2"
        refused = client.post(f"{here}/webhook/register", data={"url": typed})
        assert refused.status_code == 400
        assert "must be the http(s) address" in refused.text
        assert _value(refused.text, "webhook-base") == typed
        assert _value(refused.text, "source-name") == "Kept typing"  # the others as stored
        shown = client.get(f"{here}/settings").text  # nothing was changed
        assert _value(shown, "source-name") == "Kept typing"
        assert _value(shown, "webhook-base") == site.url


#: Each page form, a field its page always has, and the reason a post without any of
#: its fields is given in place.
FORMS = [
    ("/tokens", "token-name", "a token needs a name"),
    ("/model", "prop-path", "unknown type ''"),
    ("/model/rename", "rename-to", "property"),
    ("/model/drop", "drop-confirm", "no property '' in the Customer Model"),
    ("/warehouse", "new-url", "unsupported warehouse URL"),
    ("/sign-in", "password", "email"),
]


@pytest.mark.parametrize(("path", "field", "reason"), FORMS, ids=[f[0] for f in FORMS])
def test_a_form_posted_without_its_fields_is_refused_in_place(
    site: Site, path: str, field: str, reason: str
) -> None:
    """A form posted with a field missing (or empty, which the framework takes for
    missing) was answered with the framework's JSON ({"detail": [...]}, 422) instead
    of the page: now its page comes back with the reason by the form."""
    with _signed_in(site) as client:
        for fields in ({}, {"path": "", "name": "", "new_url": "", "email": ""}):
            refused = client.post(path, data=fields)
            assert refused.status_code == 400, (fields, refused.text[:200])
            assert refused.headers["content-type"].startswith("text/html")
            assert f'id="{field}"' in refused.text  # the form, to try again
            alerts = re.findall(r'role="alert">([^<]*)<', refused.text)
            assert any(reason in html.unescape(a) for a in alerts), alerts


def test_a_change_without_its_fields_is_told_not_dumped(site: Site) -> None:
    """The row actions (htmx) and the source settings answered a missing field with the
    framework's JSON, which htmx swapped into the pipelines table as text; they now
    answer the console's page for a refusal, naming the field (never swapped)."""
    conn = site.add_source("Missing fields")
    pipeline = site.add_pipeline(conn.id, "Missing fields")
    with _signed_in(site) as client:
        for path, field in (
            (f"/pipelines/{pipeline.id}/enable", "enabled"),
            (f"/pipelines/{pipeline.id}/schedule", "schedule"),
            ("/sources/new/stripe", "form_id"),
            ("/workspace", "workspace_id"),
        ):
            refused = client.post(path, data={}, headers={"HX-Request": "true"})
            assert refused.status_code == 400, (path, refused.text[:200])
            assert refused.text.lstrip().lower().startswith("<!doctype html>")
            [alert] = re.findall(r'role="alert">([^<]*)<', refused.text)
            assert html.unescape(alert) == f"the form lacks {field}", path
        for path, field in (
            (f"/connections/{conn.id}/rename", "source-name"),
            (f"/connections/{conn.id}/rotate-key", "new-key"),
        ):
            refused = client.post(path, data={})
            assert refused.status_code == 400
            assert f'id="{field}"' in refused.text
            assert 'aria-invalid="true"' in refused.text
    with httpx.Client(base_url=site.url, headers={"Origin": site.url}) as anonymous:
        answer = anonymous.post(f"/pipelines/{pipeline.id}/enable", data={})
        assert answer.status_code == 303  # signing in comes first
        assert answer.headers["location"].startswith("/sign-in?next=")


def test_a_refused_profile_search_keeps_the_profiles_page(site: Site) -> None:
    """A search the service refuses (text holding the NUL character, pasted from
    elsewhere) showed the console's error page, with a link to Sources and without the
    search box; the Profiles page now comes back with the reason by its search box."""
    with _signed_in(site) as client:
        refused = client.get("/profiles", params={"q": "ann\x00@example.com"})
        assert refused.status_code == 400
        assert _value(refused.text, "profile-search") == "ann@example.com"
        [alert] = re.findall(r'role="alert"[^>]*>([^<]*)<', refused.text)
        assert "NUL character" in alert
        assert "Back to Sources" not in refused.text


def test_the_editor_answers_another_workspaces_objects_as_not_found(site: Site) -> None:
    """The editor's saves answered a connection or pipeline of another workspace (as
    one deleted) with 400, where every other route of the console and the API answers
    404 (DESIGN §8); nothing of theirs changes or shows."""
    app = site.app()
    try:
        theirs = app.in_workspace(workspaces.add_workspace(app, "Editor's other").id)
        conn = connections.add_stripe(
            theirs, "Their editor source", site.sandbox.secret_key, site.sandbox.url
        )
        pipeline = saving.save_new(theirs, conn.id, "Their editor pipeline").pipeline
    finally:
        app.close()
    body = {"name": "stolen", "transformation": {"kind": "mapping", "mapping": {}}}
    with _signed_in(site) as client:
        for path in (f"/connections/{conn.id}/pipelines", f"/pipelines/{pipeline.id}"):
            refused = client.post(path, json=body)
            assert refused.status_code == 404, (path, refused.text)
            assert refused.json()["error"]["type"] == "NotFound"
            assert "Their editor" not in refused.text
    app = site.app()
    try:
        kept = manage.get(app.in_workspace(pipeline.workspace_id), pipeline.id)
    finally:
        app.close()
    assert kept.name == "Their editor pipeline"


def test_the_editor_refuses_a_form_body_saying_so(site: Site) -> None:
    """A form posted to the editor's JSON routes (a script or a hand-made form) failed
    with 500 (the body was read once for the form's workspace field, then again as
    JSON); it is refused as any body that is not a JSON object."""
    conn = site.add_source("Form body")
    pipeline = site.add_pipeline(conn.id, "Form body")
    with _signed_in(site) as client:
        for path in (
            f"/connections/{conn.id}/pipelines",
            f"/pipelines/{pipeline.id}",
            "/editor/preview",
        ):
            refused = client.post(path, data={"name": "x"})
            assert refused.status_code in (200, 400), (path, refused.status_code)
            assert "the body must be a JSON object" in refused.text, path


def test_a_cancelled_run_says_why(site: Site) -> None:
    """A run cancelled before it started (its pipeline disabled in another tab, or
    deleted) showed "Import cancelled" and nothing more: its page and the pipelines table
    never said that no one had pressed Cancel."""
    pipeline, run = _queued(site, "Why cancelled", "Disabled with a queued run")
    with _signed_in(site) as client:
        disabled = client.post(f"/pipelines/{pipeline.id}/enable", data={"enabled": "false"})
        assert disabled.status_code == 200
        why = "Import cancelled (dropped: the pipeline was disabled before it started)"
        assert why in html.unescape(disabled.text)  # the pipelines table's row
        assert why in html.unescape(client.get(f"/runs/{run.id}").text)
