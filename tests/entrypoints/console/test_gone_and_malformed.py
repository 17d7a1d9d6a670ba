"""Over plain HTTP against a real ``headwater serve`` with no run worker (a queued run
stays queued): what the console answers for objects deleted while a page follows them,
and for forms posted with fields missing, malformed or refused."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.entrypoints.console.conftest import EMAIL, PASSWORD, Site
from tests.serving import start_serve

from headwater.entrypoints.environment import settings_from_env
from headwater.sandbox.testing import start_sandbox
from headwater.services.app import App
from headwater.services.auth import users
from headwater.services.pipelines import runner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The console's server with no run worker: runs enqueued stay queued."""
    home: Path = tmp_path_factory.mktemp("console-idle")
    app = App.open(settings_from_env({"HEADWATER_HOME": str(home)}))
    users.add_user(app, EMAIL, PASSWORD)
    app.close()
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


@pytest.mark.parametrize("view", ["page", "history", "row"])
def test_a_followed_run_deleted_with_its_pipeline_ends_its_stream(site: Site, view: str) -> None:
    """A queued run's live progress, open on its page (or a history row, or the
    pipelines table), while its pipeline is deleted in another tab: the stream failed
    half way (an exception in the server, the answer cut off), so the page kept saying
    "queued" with nothing to tell it otherwise. It now ends with what replaces it."""
    conn = site.add_source(f"Followed {view}")
    pipeline = site.add_pipeline(conn.id, f"Deleted while followed ({view})")
    app = site.app()
    try:
        run = runner.enqueue(app, pipeline.id)
    finally:
        app.close()
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
        if view == "page":
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
        assert "at most 200 characters" in refused.text
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
