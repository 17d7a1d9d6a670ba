"""The CLI with `headwater serve` up (embedded mode): `pipelines run` goes through the
service's queue and follows the run; Ctrl-C stops following, not the run;
`runs show --follow` follows any run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from tests.processes import cpu_seconds
from tests.service.conftest import World, slow, wait_for
from tests.serving import service_env, start_serve

from headwater.adapters.store import runs
from headwater.kernel.entities import RunStatus
from headwater.sandbox.testing import RunningSandbox

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("service_store", ["sqlite"])]


def _cli(world: World, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "headwater", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=service_env(world.home, world.database_url),
    )


def _settled(process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait until `process` idles (under 10% of a core over half a second): past its
    imports, which take seconds on a loaded machine, and waiting on what it follows.
    A Ctrl-C sent sooner lands in the imports, before the CLI handles it."""
    deadline = time.monotonic() + timeout
    before = cpu_seconds(process.pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(process.pid)
        if now - before < 0.05:
            return
        before = now
    raise AssertionError(f"the CLI was still busy after {timeout} s")


def test_pipelines_run_goes_through_the_service_and_follows_it(
    world: World, small_sandbox: RunningSandbox
) -> None:
    [pipeline] = world.pipelines(small_sandbox, 1)
    with start_serve(world.home, database_url=world.database_url, workers=1) as served:
        out, errors = _cli(world, "pipelines", "run", pipeline.id, "--json").communicate(
            timeout=120
        )
        document = json.loads(out)
        assert document["status"] == "succeeded", errors
        assert document["counters"]["written"] == 5
        assert world.run(document["id"]).pid == served.pid  # the service executed it


def test_ctrl_c_while_following_leaves_the_run_to_the_service(
    world: World, big_sandbox: RunningSandbox
) -> None:
    [pipeline] = world.pipelines(big_sandbox, 1)
    slow(big_sandbox)
    with start_serve(world.home, database_url=world.database_url, workers=1):
        cli = _cli(world, "pipelines", "run", pipeline.id, "--json")
        wait_for(lambda: runs.live_run(world.app.engine, pipeline.id) is not None, 30, "queued")
        live = runs.live_run(world.app.engine, pipeline.id)
        assert live is not None
        wait_for(lambda: world.run(live.id).status == RunStatus.RUNNING, 30, "running")
        cli.send_signal(signal.SIGINT)
        out, errors = cli.communicate(timeout=30)
        assert cli.returncode == 130
        assert f"stopped following; run {live.id} goes on in the service" in errors
        following = json.loads(out)  # --json: the run's document as it stands
        assert following["id"] == live.id
        assert following["status"] == "running"
        again = _cli(world, "runs", "show", live.id, "--follow", "--json")
        _settled(again)  # following
        again.send_signal(signal.SIGINT)
        out, errors = again.communicate(timeout=30)
        assert again.returncode == 130, errors
        assert json.loads(out)["id"] == live.id, errors  # --json: one document still
        assert world.run(live.id).status == RunStatus.RUNNING  # the run goes on
        slow(big_sandbox, on=False)
        follower = _cli(world, "runs", "show", live.id, "--follow", "--json")
        out, errors = follower.communicate(timeout=120)
        assert json.loads(out)["status"] == "succeeded", errors
