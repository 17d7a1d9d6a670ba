"""`pipelines run --json` interrupted with Ctrl-C still prints one JSON document: the
run's, as it ended (cancelled, when the CLI executed it), with exit code 130.  It
printed nothing on stdout, so a script could not learn which run it was or how far it
got (`--json` promises one document)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.services.conftest import MakePipeline, connect
from tests.services.test_runs import wait_for

from headwater.kernel.entities import RunStatus
from headwater.sandbox.testing import start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import runner


@pytest.mark.slow
def test_ctrl_c_during_pipelines_run_json_prints_the_cancelled_run(
    app: App, home: Path, make_pipeline: MakePipeline
) -> None:
    env = {**os.environ, "HEADWATER_HOME": str(home)}
    with start_sandbox(customers=2000, seed=47) as sb:
        pipeline = make_pipeline(connect(app, sb, rps=10))
        assert runner.run_pipeline(app, pipeline.id).status == RunStatus.SUCCEEDED
        args = ["pipelines", "run", pipeline.id, "--full", "--json"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "headwater", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, as in a terminal
        )
        live = wait_for(app, pipeline.id, lambda r: r.live and r.counters.get("read", 0) > 0)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted: the run ended cancelled" in stderr
    document = json.loads(stdout)  # exactly one JSON document
    assert document["id"] == live.id
    assert document["status"] == "cancelled"
    assert document["counters"]["read"] > 0
