"""Resolution after each run: what a run touched is recorded with its rows and resolved
once they committed; a run killed in between leaves it pending for the next one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import stripe
from tests.services.conftest import MakePipeline, connect

from headwater.sandbox.testing import start_sandbox
from headwater.services import profiles
from headwater.services.app import App
from headwater.services.pipelines import runner

MAPPING = {"email": "email", "first_name": "name", "phone": "phone"}

#: A `pipelines run` whose process is SIGKILLed the moment its writes have committed
#: and identity resolution would start.
KILLED_RUN = """
import os, runpy, signal, sys
from headwater.services import profiles
def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
profiles.resolve_after_run = killed
sys.argv = ["headwater", "pipelines", "run", sys.argv[1], "--full"]
runpy.run_module("headwater", run_name="__main__")
"""


def _members(app: App) -> set[frozenset[str]]:
    out = set()
    for p in profiles.list_profiles(app):
        doc = profiles.show_profile(app, p["id"])
        out.add(frozenset(f"{i['pipeline']}:{i['source_id']}" for i in doc["identities"]))
    return out


@pytest.mark.slow
def test_a_run_killed_before_resolution_leaves_pending_for_the_next(
    warehouse_app: App, home: Path, make_pipeline: MakePipeline
) -> None:
    app = warehouse_app
    env = {**os.environ, "HEADWATER_HOME": str(home)}
    with start_sandbox(customers=0, seed=5) as sb:
        client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
        ann = client.v1.customers.create({"email": "ann@example.com", "name": "Ann"}).id
        ann2 = client.v1.customers.create({"email": " ANN@example.com", "name": "A"}).id
        bob = client.v1.customers.create({"phone": "+1 555 0100", "name": "Bob"}).id
        conn = connect(app, sb)
        one = make_pipeline(conn, MAPPING, name="one")
        two = make_pipeline(conn, MAPPING, name="two")
        killed = subprocess.run(
            [sys.executable, "-c", KILLED_RUN, one.id],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert killed.returncode == -9, killed.stderr
        wh = app.warehouse()
        try:
            assert wh.count(one.id) == 3  # the writes committed
            assert set(wh.pending_identities().keys) == {
                (one.id, ann),
                (one.id, ann2),
                (one.id, bob),
            }
            assert wh.profiles() == []  # never resolved
        finally:
            wh.close()
        # The next run (of another pipeline) resolves its own and what was left.
        run = runner.run_pipeline(app, two.id, full=True)
        assert run.status == "succeeded", run.message
        assert run.summary["profiles"]["considered"] == 6
    assert _members(app) == {
        frozenset({f"one:{ann}", f"one:{ann2}", f"two:{ann}", f"two:{ann2}"}),
        frozenset({f"one:{bob}", f"two:{bob}"}),
    }
    wh = app.warehouse()
    try:
        assert not wh.pending_identities()
    finally:
        wh.close()
    again = profiles.rebuild_profiles(app)
    assert (again.written, again.removed, again.merges, again.splits) == (0, 0, [], [])
