"""The webhook dispatcher while its PostgreSQL metadata store is away: it looks for due
follow-ups every 0.1 s, and each failed look logged a whole traceback at error level,
ten a second for as long as the outage lasted (no password in them, but a flood that
buried every other line).  An outage is one warning when it starts and one line when
the store answers again; dispatching then goes on by itself."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import pytest
from tests.entrypoints.test_serve_store_down import store_database, unreachable

from headwater.kernel.settings import Settings
from headwater.services.app import App
from headwater.services.webhooks import followups

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_a_store_outage_is_two_log_lines_not_a_traceback_a_tick(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with store_database() as database:
        url = f"postgresql://root@127.0.0.1:5432/{database}"
        settings = replace(Settings.embedded(tmp_path), database_url=url)
        app = App.open(settings)
        dispatcher = followups.Dispatcher(app, interval=0.05)
        try:
            dispatcher.start()
            caplog.set_level(logging.INFO, logger=followups.__name__)
            caplog.clear()
            with unreachable(database):
                time.sleep(2)  # some 40 looks at the store, each failing
            deadline = time.monotonic() + 30
            while "answers again" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            dispatcher.stop()
            app.close()
    lines = [r for r in caplog.records if r.name == followups.__name__]
    assert [r.exc_info for r in lines if r.exc_info] == []
    assert [r.levelno for r in lines] == [logging.WARNING, logging.INFO], caplog.text
    assert lines[0].getMessage().startswith("webhook follow-ups wait: the metadata store failed")
    assert "answers again" in lines[1].getMessage()
