"""A run's page while the run is live: each progress event replaces what the run panel
shows. The whole panel (a <section id="run-panel">) used to be written inside the one
on the page: a second panel, and duplicate ids, at every event."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from tests.entrypoints.console.conftest import Site, sign_in

from headwater.sandbox.testing import start_sandbox
from headwater.services import connections
from headwater.services.pipelines import runner, saving

pytestmark = pytest.mark.slow


def test_a_live_run_keeps_one_panel(page: Page, site: Site) -> None:
    with start_sandbox(customers=3000, seed=7, latency_ms=1500) as slow:
        app = site.app()
        try:
            conn = connections.add_stripe(app, "Slow panel", slow.secret_key, slow.url, 50.0)
            pipeline = saving.save_new(app, conn.id, "Watched").pipeline
            run = runner.enqueue(app, pipeline.id)
        finally:
            app.close()
        sign_in(page, site.url)
        page.goto(f"{site.url}/runs/{run.id}")
        panel = page.get_by_role("region", name=f"Run {run.id}")
        progress = panel.get_by_role("status").first
        expect(progress).to_contain_text("…")  # live: queued or importing
        shown = progress.inner_text()
        expect(progress).not_to_have_text(shown, timeout=30_000)  # an event came
        expect(panel).to_have_count(1)
        expect(page.get_by_role("table", name="Counters")).to_have_count(1)
        expect(page.get_by_role("button", name="Cancel")).to_have_count(1)
        page.get_by_role("button", name="Cancel").click()
        expect(panel.get_by_role("status")).to_contain_text("Import cancelled", timeout=30_000)
        expect(panel).to_have_count(1)
        expect(page.get_by_role("table", name="Counters")).to_have_count(1)
