"""A run's page following a live run while the PostgreSQL metadata store goes away for
a few seconds, then comes back (the outage harness of test_serve_store_down: a real
`headwater serve`, the store's database refusing connections).

The live stream used to fail with the store: the browser's reconnect got a 503, an
EventSource never retries after one, and the page stopped updating until reloaded.
What must hold: while the store is away the page keeps the last progress it showed and
says, visibly, that the metadata store is unavailable and that it is retrying; once the
store answers, updates resume by themselves, and the run ends showing what the store
holds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect
from tests.entrypoints.console.conftest import EMAIL, PASSWORD, sign_in
from tests.entrypoints.test_serve_store_down import store_database, unreachable
from tests.serving import start_serve

from headwater.entrypoints.environment import settings_from_env
from headwater.kernel.entities import Run
from headwater.sandbox.testing import start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.auth import users
from headwater.services.pipelines import runner, saving

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@dataclass
class Outage:
    url: str  # the console's
    database: str  # the store's, to make unreachable
    run_id: str  # a run queued on a slow sandbox: live for tens of seconds

    def stored(self) -> Run:
        app = App.open(settings_from_env())
        try:
            return runner.get_run(app, self.run_id)
        finally:
            app.close()


@pytest.fixture
def outage(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Outage]:
    with store_database() as database, start_sandbox(customers=2000, latency_ms=700) as slow:
        url = f"postgresql://root@127.0.0.1:5432/{database}"
        monkeypatch.setenv("HEADWATER_DATABASE_URL", url)
        app = App.open(settings_from_env())
        try:
            users.add_user(app, EMAIL, PASSWORD)
            conn = connections.add_stripe(app, "Slow", slow.secret_key, slow.url, 50.0)
            pipeline = saving.save_new(app, conn.id, "Watched").pipeline
            run = runner.enqueue(app, pipeline.id)
        finally:
            app.close()
        with start_serve(home, database_url=url, workers=1) as service:
            yield Outage(service.url, database, run.id)


def _read(progress: str) -> int:
    found = re.search(r"([\d,]+) read", progress)
    assert found, progress
    return int(found.group(1).replace(",", ""))


def _ends_as_stored(page: Page, outage: Outage) -> None:
    """The run ends on the page, showing the counters the store holds."""
    summary = page.locator("#run-panel .summary")
    expect(summary).to_contain_text("Import completed", timeout=60_000)
    run = outage.stored()
    assert run.counters["read"] == 2000
    counters = page.get_by_role("table", name="Counters")
    expect(counters.get_by_role("row", name=re.compile(r"^Read "))).to_contain_text("2,000")
    written = f"{int(run.counters['written']):,}"
    expect(counters.get_by_role("row", name=re.compile(r"^Written "))).to_contain_text(written)
    expect(summary).to_contain_text(f"{written} customers imported")


def test_a_run_page_follows_its_run_through_a_store_outage(page: Page, outage: Outage) -> None:
    sign_in(page, outage.url)
    page.goto(f"{outage.url}/runs/{outage.run_id}")
    progress = page.get_by_role("region", name=f"Run {outage.run_id}").get_by_role("status").first
    expect(progress).to_contain_text(re.compile(r"[1-9][\d,]* read"), timeout=30_000)
    banner = page.locator("#status-message")
    expect(banner).to_be_hidden()
    with unreachable(outage.database):
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("metadata store is unavailable")
        expect(banner).to_contain_text("retrying")
        shown = progress.inner_text()
        time.sleep(3)  # the outage lasts; the page keeps what it showed
        expect(progress).to_have_text(shown)
        expect(banner).to_contain_text("metadata store is unavailable")
    # Back: updates resume without a reload, and the banner goes.
    expect(banner).to_be_hidden(timeout=15_000)
    expect(progress).not_to_have_text(shown, timeout=15_000)
    now = progress.inner_text()
    assert "Importing" not in now or _read(now) >= _read(shown), (now, shown)
    _ends_as_stored(page, outage)


def test_a_stream_refused_while_the_store_is_away_is_followed_again(
    page: Page, outage: Outage
) -> None:
    """The store goes away as the page's stream connects: the console's 503 (real: the
    browser's request is only held until the store refuses connections)."""
    sign_in(page, outage.url)
    held: list[Route] = []
    events = re.compile(r"/runs/[^/?]+/events")
    # The page's first request for its stream is held; any later one (the page's own
    # retries) goes on at once.
    page.route(events, lambda route: route.continue_() if held else held.append(route))
    page.goto(f"{outage.url}/runs/{outage.run_id}")
    progress = page.get_by_role("region", name=f"Run {outage.run_id}").get_by_role("status").first
    expect(progress).to_contain_text("…")  # live: queued or importing
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert len(held) == 1
    banner = page.locator("#status-message")
    with unreachable(outage.database):
        held[0].continue_()
        expect(banner).to_contain_text("metadata store failed")
        expect(banner).to_contain_text("retrying in 5 s")
        shown = progress.inner_text()
    expect(banner).to_be_hidden(timeout=15_000)
    expect(progress).not_to_have_text(shown, timeout=15_000)
    _ends_as_stored(page, outage)
