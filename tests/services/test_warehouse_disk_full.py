"""A DuckDB warehouse on a filesystem that fills up under a run.

The warehouse lives on a small tmpfs of its own (mounted for the test: the machine's
test runs are root).  The first import fits; a file then takes all but a sliver of the
space, so the next run's writes fail with ENOSPC.  That run must fail saying the disk
is full, the warehouse file must still open (read-only, from another process, as a
user's tool would) with everything the first run imported, and once space is freed the
next run must land exactly what a fresh import lands.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import stripe
from tests.services.failure_world import fresh_import, landed, make, seed_shared

from headwater.adapters.store import runs
from headwater.kernel.settings import Settings
from headwater.sandbox.testing import start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import ending, engine, runner
from headwater.services.pipelines.documents import run_warnings
from headwater.services.warehouse import set_url

pytestmark = pytest.mark.slow

SIZE_MB = 48


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """Take every free byte of `disk` but `leave`."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with filler.open("wb") as out:
        out.truncate(0)
        chunk = b"\0" * 2**20
        todo = free - leave
        while todo > 0:
            out.write(chunk[: min(todo, len(chunk))])
            todo -= len(chunk)
    return filler


READ_BACK = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1], read_only=True)
print(conn.execute("SELECT count(*), count(DISTINCT _source_id) FROM headwater.identities")
      .fetchone())
"""


def read_back(path: Path) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", READ_BACK, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    count, distinct = done.stdout.strip().strip("()").split(",")
    return int(count), int(distinct)


@pytest.mark.parametrize("incremental", [False, True], ids=["full", "incremental"])
def test_a_full_disk_fails_the_run_clearly_and_keeps_what_earlier_runs_imported(
    app: App,
    settings: Settings,
    small_disk: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    incremental: bool,
) -> None:
    monkeypatch.setattr(engine, "WRITE_BATCH", 100)  # the run commits a few, then fails
    path = small_disk / "warehouse.duckdb"
    set_url(app, f"duckdb:///{path}")
    with start_sandbox(customers=1500, seed=31) as sb:
        seed_shared(sb)
        pipeline = make(app, sb, incremental=incremental)
        first = runner.run_pipeline(app, pipeline.id)
        assert first.status == "succeeded", first.message
        before = landed(app, pipeline.id)
        assert len(before.identities) == 1509
        client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
        for n in range(150):
            client.v1.customers.create({"email": f"late{n}@example.com", "name": "x" * 200})
        listed = [c.id for c in client.v1.customers.list({"limit": 100}).auto_paging_iter()]
        for cid in listed[-100:]:
            client.v1.customers.update(cid, {"name": "y" * 300})

        filler = fill(small_disk, 64 * 1024)
        failed = runner.run_pipeline(app, pipeline.id, full=not incremental)
        assert failed.status == "failed"
        assert failed.message is not None
        assert "No space left on device" in failed.message, failed.message
        # The file opens, from another process, with the first import whole (and
        # whatever batches of this run committed before the disk filled), once each.
        count, distinct = read_back(path)
        assert count == distinct
        kept = landed(app, pipeline.id, resolved=False)
        assert set(before.identities) <= set(kept.identities)
        assert count == len(kept.identities)

        filler.unlink()
        again = runner.run_pipeline(app, pipeline.id)
        assert again.status == "succeeded", again.message
        got = landed(app, pipeline.id)
        assert got.pending == 0
        want = fresh_import(settings, tmp_path / "ref", f"duckdb:///{tmp_path / 'ref.duckdb'}", sb)
    assert got.identities == want.identities
    assert set(got.profiles) == set(want.profiles)
    assert read_back(path) == (1659, 1659)


def test_a_full_disk_under_the_store_and_the_warehouse_still_tells_why_the_run_failed(
    small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The embedded default: the SQLite store beside the DuckDB file, on one disk.
    settings = dataclasses.replace(Settings.embedded(small_disk / "home"), run_lease_seconds=2)
    monkeypatch.setattr(ending, "ENDING_ATTEMPTS", 2)  # a full disk does not wait a lock out
    monkeypatch.setattr(engine, "WRITE_BATCH", 100)
    app = App.open(settings)
    try:
        with start_sandbox(customers=1500, seed=33) as sb:
            seed_shared(sb)
            pipeline = make(app, sb, incremental=False)
            first = runner.run_pipeline(app, pipeline.id)
            assert first.status == "succeeded", first.message
            before = landed(app, pipeline.id)
            client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
            for n in range(150):
                client.v1.customers.create({"email": f"late{n}@example.com", "name": "x" * 200})

            filler = fill(small_disk, 64 * 1024)
            failed = runner.run_pipeline(app, pipeline.id)
            # Neither its ending nor its progress could be stored: what this process
            # knows is answered, not the store's stale "running".
            assert failed.status == "failed", (failed.status, failed.message)
            assert failed.message is not None
            assert "No space left on device" in failed.message, failed.message
            warnings = run_warnings(failed)
            assert any(
                "could not be recorded in the metadata store" in w and "disk is full" in w
                for w in warnings
            ), warnings

            filler.unlink()
            time.sleep(2.5)  # its lease lapses: the next run closes it as lost
            again = runner.run_pipeline(app, pipeline.id)
            assert again.status == "succeeded", again.message
            stale = runs.get_run(app.engine, failed.id)
            assert stale.status == "failed"
            got = landed(app, pipeline.id)
            assert set(before.identities) <= set(got.identities)
            want = fresh_import(
                settings, tmp_path / "ref", f"duckdb:///{tmp_path / 'ref.duckdb'}", sb
            )
    finally:
        app.close()
    assert got == want
