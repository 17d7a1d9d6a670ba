"""REST API read speed under import load (issue 12), as ratios measured in one run.

A real `headwater serve` (embedded defaults: SQLite store, DuckDB warehouse) holds 50
pipelines and 10,000 runs; a run imports 100,000 sandbox customers while HTTP clients
hammer `GET /api/v1/pipelines` (the first page, 20 pipelines with their last runs) and
`GET /api/v1/runs/{id}` with a real token.  Printed:

- req/s of each endpoint while the import runs, against the target of 1,000 req/s and
  against the yardstick of `GET /healthz` (the HTTP stack alone) in the same run;
- the import's rate (customers/s) under that load against the same full import with no
  load (`--full` both times, after a first import that warms everything up): the drop
  must stay under 15%;
- the CPU the load generator itself used and the CPU of the serve process (in cores:
  CPU seconds per second), so that a client starving the server on two cores shows,
  and the machine's load average before and after.

The import runs where a user's would: `--executor serve` queues it with
`POST /pipelines/{id}/runs` for serve's own workers; `--executor cli` (for a serve
without workers) runs it with `headwater pipelines run --full` in its own process.

    python bench/api.py                          # 100,000 customers, 10,000 runs
    python bench/api.py --customers 20000 --seconds 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.serving import Service, service_env, start_serve

from headwater.adapters.store.tables import runs as runs_table
from headwater.entrypoints.environment import settings_from_env
from headwater.kernel.entities import new_id, utcnow
from headwater.kernel.settings import Settings
from headwater.sandbox.testing import start_sandbox
from headwater.services.app import App

TARGET_RPS = 1000.0
TARGET_DROP = 0.15


def cli(home: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "headwater", *args, "--json"],
        env=service_env(home),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 3):
        raise SystemExit(f"headwater {' '.join(args)} failed: {done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _get(sock: socket.socket, request: bytes, buffer: bytearray) -> int:
    """Send one keep-alive GET and read its whole response; its status code.

    A bare socket client: httpx would spend more CPU per request than the server under
    test, on the same two cores."""
    sock.sendall(request)
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += sock.recv(65536)
    buffer[:] = rest[length:]
    return int(head[9:12])


def _hammer(url: str, paths: list[str], token: str, stop: Any, counts: Any, threads: int) -> None:
    """One load process: `threads` keep-alive clients cycling through `paths`; puts
    (successes, failures, CPU seconds this process used)."""
    parts = urlsplit(url)
    done = [0] * threads
    failed = [0] * threads
    requests = [
        (
            f"GET {parts.path}{path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
        for path in paths
    ]

    def loop(index: int) -> None:
        with socket.create_connection((parts.hostname, parts.port)) as sock:
            buffer = bytearray()
            i = index
            while not stop.is_set():
                status = _get(sock, requests[i % len(requests)], buffer)
                i += 1
                if status == 200:
                    done[index] += 1
                else:
                    failed[index] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    cpu = time.process_time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    counts.put((sum(done), sum(failed), time.process_time() - cpu))


@dataclass(frozen=True)
class Measured:
    """What one spell of load did: successful requests per second, failed requests, and
    the CPU (cores) of the load generator and of the server under test."""

    rps: float
    failed: int
    client_cores: float
    server_cores: float


class Load:
    """HTTP load from `processes` x `threads` clients until `stop()`."""

    def __init__(
        self, url: str, paths: list[str], token: str, server_pid: int, processes: int, threads: int
    ):
        self._server = psutil.Process(server_pid)
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self._counts: Any = ctx.Queue()
        self._procs = [
            ctx.Process(target=_hammer, args=(url, paths, token, self._stop, self._counts, threads))
            for _ in range(processes)
        ]

    def __enter__(self) -> Load:
        for p in self._procs:
            p.start()
        self._server_cpu = _cpu_seconds(self._server)
        self._started = time.monotonic()
        time.sleep(1.0)  # let every client connect (counted: its requests count too)
        return self

    def stop(self) -> Measured:
        """What the load did since it started."""
        elapsed = time.monotonic() - self._started
        server = _cpu_seconds(self._server) - self._server_cpu
        self._stop.set()
        ok = bad = 0
        client = 0.0
        for _ in self._procs:
            n, f, cpu = self._counts.get(timeout=60)
            ok, bad, client = ok + n, bad + f, client + cpu
        for p in self._procs:
            p.join(timeout=30)
        return Measured(ok / elapsed, bad, client / elapsed, server / elapsed)

    def __exit__(self, *exc: object) -> None:
        if not self._stop.is_set():
            self.stop()


def _cpu_seconds(process: psutil.Process) -> float:
    """CPU seconds of `process` and its children, ended or alive (the run's reader)."""
    times = process.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return float(total)


def timed_import(
    http: httpx.Client, home: Path, pipeline_id: str, args: Any, pids: tuple[int, int]
) -> tuple[dict[str, Any], tuple[float, float]]:
    """`run_import`, and the cores that serve (with its children) and the sandbox used
    meanwhile: where the import's CPU goes."""
    processes = [psutil.Process(pid) for pid in pids]
    before = [_cpu_seconds(p) for p in processes]
    started = time.monotonic()
    run = run_import(http, home, pipeline_id, args.executor)
    elapsed = time.monotonic() - started
    serve, sandbox = (
        (_cpu_seconds(p) - b) / elapsed for p, b in zip(processes, before, strict=True)
    )
    return run, (serve, sandbox)


def measure(
    url: str, paths: list[str], token: str, pid: int, seconds: float, args: Any
) -> Measured:
    with Load(url, paths, token, pid, args.processes, args.threads) as load:
        time.sleep(seconds)
        measured = load.stop()
    if measured.failed:
        raise SystemExit(f"{measured.failed} requests to {paths} failed")
    return measured


def seed_runs(home: Path, pipeline_ids: list[str], count: int) -> str:
    """Insert `count` finished runs spread over the pipelines; the id of one of them."""
    app = App.open(_settings(home))
    now = utcnow()
    rows = []
    for i in range(count):
        created = now - timedelta(minutes=count - i)
        rows.append(
            {
                "id": new_id("run"),
                "pipeline_id": pipeline_ids[i % len(pipeline_ids)],
                "kind": "incremental",
                "status": "succeeded",
                "counters": {"read": 120, "filtered_out": 3, "written": 117, "failed_total": 0},
                "message": None,
                "summary": {"reason": "scheduled"},
                "pid": None,
                "host": "bench",
                "created_at": created,
                "started_at": created,
                "finished_at": created + timedelta(seconds=4),
                "heartbeat_at": None,
                "owner": None,
                "lease_expires_at": None,
                "cancel_requested": False,
            }
        )
    with app.engine.begin() as conn:
        conn.execute(insert(runs_table), rows)
    app.close()
    return str(rows[count // 2]["id"])


def _settings(home: Path) -> Settings:
    """The settings `headwater serve` runs with on `home` (the embedded defaults)."""
    return settings_from_env(service_env(home))


def import_rate(run: dict[str, Any]) -> float:
    started = datetime.fromisoformat(run["started_at"])
    finished = datetime.fromisoformat(run["finished_at"])
    return float(run["counters"]["read"]) / (finished - started).total_seconds()


def run_import(http: httpx.Client, home: Path, pipeline_id: str, executor: str) -> dict[str, Any]:
    """A full import of the pipeline, to its end; the run's document."""
    if executor == "cli":
        return cli(home, "pipelines", "run", pipeline_id, "--full")
    run = http.post(f"/pipelines/{pipeline_id}/runs", json={"full": True}).json()
    while run["status"] in ("queued", "running"):
        time.sleep(0.25)
        run = http.get(f"/runs/{run['id']}").json()
    return dict(run)


def setup(http: httpx.Client, sandbox_url: str, key: str, pipelines: int) -> tuple[str, list[str]]:
    conn = http.post(
        "/connections",
        json={
            "kind": "stripe",
            "name": "bench",
            "api_key": key,
            "base_url": sandbox_url,
            "requests_per_second": 100,
        },
    ).json()
    ids = []
    for i in range(pipelines):
        body = {
            "connection_id": conn["id"],
            "name": f"pipeline {i:02}",
            "schedule": "off",
            "filter": {
                "conditions": [{"property": "address.country", "operator": "is", "values": ["IT"]}]
            },
        }
        ids.append(http.post("/pipelines", json=body).json()["id"])
    importer = http.post("/pipelines", json={"connection_id": conn["id"], "name": "import"})
    return importer.json()["id"], ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--pipelines", type=int, default=50)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=8.0, help="each unloaded measure")
    parser.add_argument("--processes", type=int, default=1, help="load processes")
    parser.add_argument("--threads", type=int, default=4, help="clients per load process")
    parser.add_argument("--executor", choices=["serve", "cli"], default="serve")
    args = parser.parse_args()
    before = os.getloadavg()

    with tempfile.TemporaryDirectory() as tmp, start_sandbox(args.customers, seed=5) as sb:
        home = Path(tmp) / "home"
        token = cli(home, "tokens", "create", "--name", "bench")["token"]
        workers = 1 if args.executor == "serve" else 0
        served: Service
        with start_serve(home, workers=workers) as served:
            api = f"{served.url}/api/v1"
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=api, headers=headers, timeout=600) as http:
                importer, pipeline_ids = setup(http, sb.url, sb.secret_key, args.pipelines)
                run_id = seed_runs(home, pipeline_ids, args.runs)
                reads = ["/pipelines", f"/runs/{run_id}"]
                pid = served.pid
                healthz = measure(served.url, ["/healthz"], token, pid, args.seconds, args)
                idle = {p: measure(api, [p], token, pid, args.seconds, args) for p in reads}

                pids = (pid, sb.process.pid)
                first = run_import(http, home, importer, args.executor)
                quiet, quiet_cpu = timed_import(http, home, importer, args, pids)
                with Load(api, reads, token, pid, args.processes, args.threads) as load:
                    loaded, loaded_cpu = timed_import(http, home, importer, args, pids)
                    under_import = load.stop()
        report(args, healthz, idle, under_import, (first, quiet, loaded), before)
        print(
            f"import CPU (cores; serve with its children, and the sandbox): quiet "
            f"{quiet_cpu[0]:.2f} + {quiet_cpu[1]:.2f}, under load {loaded_cpu[0]:.2f} + "
            f"{loaded_cpu[1]:.2f} (the cli executor's import runs in its own process)"
        )


def _cores(m: Measured) -> str:
    return f"client CPU {m.client_cores:.2f} cores, serve {m.server_cores:.2f} cores"


def report(
    args: Any,
    healthz: Measured,
    idle: dict[str, Measured],
    under_import: Measured,
    runs: tuple[dict[str, Any], dict[str, Any], dict[str, Any]],
    load_before: tuple[float, float, float],
) -> None:
    for run in runs:
        assert run["status"] == "succeeded", run
        assert run["counters"]["read"] == args.customers, run["counters"]
    _, quiet, loaded = runs
    rate_quiet, rate_loaded = import_rate(quiet), import_rate(loaded)
    drop = 1 - rate_loaded / rate_quiet
    print(f"store: {args.pipelines} pipelines, {args.runs:,} runs; import of {args.customers:,}")
    print(f"load: {args.processes} process(es) x {args.threads} keep-alive clients")
    print(f"yardstick GET /healthz: {healthz.rps:,.0f} req/s ({_cores(healthz)})")
    for path, m in idle.items():
        print(
            f"idle   GET {path.split('/run_')[0]:<12} {m.rps:>7,.0f} req/s  "
            f"(x{m.rps / TARGET_RPS:.2f} of {TARGET_RPS:,.0f}; {m.rps / healthz.rps:.2f} of "
            f"/healthz; {_cores(m)})"
        )
    print(
        f"during import, both endpoints alternately: {under_import.rps:,.0f} req/s "
        f"(x{under_import.rps / TARGET_RPS:.2f} of {TARGET_RPS:,.0f}), "
        f"{under_import.failed} failed; {_cores(under_import)}"
    )
    print(
        f"import rate: {rate_quiet:,.0f}/s quiet, {rate_loaded:,.0f}/s under load: "
        f"drop {drop:.1%} (target < {TARGET_DROP:.0%}; executor {args.executor})"
    )
    after = os.getloadavg()
    print(
        f"machine load average (1, 5, 15 min): before {load_before[0]:.2f} "
        f"{load_before[1]:.2f} {load_before[2]:.2f}, after {after[0]:.2f} {after[1]:.2f} "
        f"{after[2]:.2f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
