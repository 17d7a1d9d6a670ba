"""Profiles after an incremental run reads again the changes of the seconds before a
full read (as it does, idempotently: the full read's event position keeps a margin):
the same as a fresh import of the same customers makes them.

Found by CI (4 December 2026): customers sharing an email, created a second apart, were
stamped by the full read with its read time, then by the next incremental run with
their (earlier) event times; the one created later became the profile's latest, where
a fresh import, with one stamp for all, breaks the tie by identity key."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import stripe
from tests.services.failure_world import fresh_import, landed, make

from headwater.kernel.settings import Settings
from headwater.sandbox.testing import start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import runner

pytestmark = pytest.mark.slow


def test_a_change_read_again_leaves_profiles_as_a_fresh_import_makes_them(
    settings: Settings, tmp_path: Path
) -> None:
    with start_sandbox(customers=50, seed=7) as sb:
        client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
        # Each email twice, the copies a second apart (Stripe's times are in seconds).
        for n in range(6):
            client.v1.customers.create({"email": f"twin{n}@example.com", "name": f"first {n}"})
        time.sleep(1.1)
        for n in range(6):
            client.v1.customers.create({"email": f"TWIN{n}@example.com", "name": f"second {n}"})
        app = App.open(settings)
        try:
            pipeline = make(app, sb)
            full = runner.run_pipeline(app, pipeline.id)
            assert full.status == "succeeded", full.message
            again = runner.run_pipeline(app, pipeline.id)
            assert again.status == "succeeded", again.message
            assert again.summary.get("kind") == "incremental"
            assert again.counters["read"] > 0  # it did read the changes again
            got = landed(app, pipeline.id)
        finally:
            app.close()
        want = fresh_import(settings, tmp_path / "ref", f"duckdb:///{tmp_path / 'ref.duckdb'}", sb)
    assert got.identities == want.identities
    differ = {
        tuple(sorted(members)): (got.profiles.get(members), want.profiles.get(members))
        for members in got.profiles.keys() | want.profiles.keys()
        if got.profiles.get(members) != want.profiles.get(members)
    }
    assert differ == {}
    assert got == want
