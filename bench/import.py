"""Import speed, as ratios against yardsticks measured in the same run (issue 3 §8).

1. Throughput: a full import of N sandbox customers into DuckDB and into PostgreSQL,
   against the rate at which a bare HTTP client merely pages through the same sandbox.
   Target: ratio >= 0.80, peak RSS of the importing processes (summed) < 400 MB.
   The import is `headwater pipelines run ID --json` in its own process, after the
   connection and pipeline were added with the CLI, as a user would do it.
2. Budget (issue 16): 40,000 customers, a 25 requests/s budget (the sandbox's global
   and per-endpoint limits, and the connection's budget), latency lognormal with a p99
   three times its median: at 100 ms, 300 ms and 1 s the import must sustain >= 0.92
   of the 2,500 customers/s the budget allows, with zero failed requests and <= 2%
   answered 429; at 300 ms with a sandbox concurrency limit of 10, >= 0.90 of what 10
   in flight allow at the mean latency measured in the same run.  The 1 s scenario
   runs twice: at the default cap of 20 in flight (reported, no target: 20 in flight
   cannot carry 25/s at a mean of 1.12 s) and at a cap of 32.  The sandbox draws its
   latencies from a seeded generator, so one run is one draw of them; with ``--repeat
   N`` each scenario runs N times in a row (other draws) and its mean is printed.

    python bench/import.py                       # 1,000,000 customers (slow start-up)
    python bench/import.py --customers 0 --scenarios 1   # only the 300 ms scenario
    python bench/import.py --customers 0 --pending 0 --scenarios 1,4 --repeat 6
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import psutil

from engines import engine_list
from figures import at_least, over_runs
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from paging import yardstick
from timeline import describe

PG_URL = "postgresql://root@127.0.0.1:5432/test"

HEADWATER = [sys.executable, "-m", "headwater"]


def cli(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [*HEADWATER, *args, "--json"], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"headwater {' '.join(args)} failed: {done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def sandbox_cpu(sb: RunningSandbox) -> float:
    return sum(psutil.Process(sb.pid).cpu_times()[:2])


class TreeMemory:
    """Peak of the summed RSS of a process and all its descendants, sampled every 50 ms.

    The importer reads in a child process, so the peak of one process is not the
    importer's footprint; summing RSS counts shared library pages more than once, which
    errs on the high side.
    """

    def __init__(self, pid: int) -> None:
        self.peak = 0
        self._root = psutil.Process(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.05):
            total = 0
            try:
                for proc in [self._root, *self._root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += proc.memory_info().rss
            except psutil.Error:
                return  # the importer has exited
            self.peak = max(self.peak, total)

    def stop(self) -> float:
        """Stop sampling; the peak in MB."""
        self._done.set()
        self._thread.join()
        return self.peak / 2**20


def import_once(
    sb: RunningSandbox,
    warehouse: str,
    rps: float,
    extra_env: dict[str, str] | None = None,
    before: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Set up with the CLI, then time `headwater pipelines run` as a user would run it.

    With `before`, a first (full) run goes untimed, then `before()` (changes, knobs),
    and the second run, incremental, is the one timed."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HEADWATER_HOME": home, "BENCH_STRIPE_KEY": sb.secret_key}
        env.update(extra_env or {})
        if warehouse != "default":
            done = subprocess.run(
                [*HEADWATER, "warehouse", "set", warehouse],
                env=env,
                stdout=subprocess.DEVNULL,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"headwater warehouse set {warehouse} failed")
        add = ["connections", "add", "stripe", "--name", "bench", "--api-key-env"]
        add += ["BENCH_STRIPE_KEY", "--base-url", sb.url, "--requests-per-second", str(rps)]
        connection = cli(add, env)
        pipeline = cli(["pipelines", "add", "--connection", connection["id"], "--name", "b"], env)
        if before is not None:
            first = run_pipeline(env, pipeline["id"])
            if first["status"] != "succeeded":
                raise SystemExit(f"the first run failed: {first['message']}")
            before()
        return run_pipeline(env, pipeline["id"])


def run_pipeline(env: dict[str, str], pipeline_id: str) -> dict[str, Any]:
    launched = time.time()
    proc = subprocess.Popen(
        [*HEADWATER, "pipelines", "run", pipeline_id, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    memory = TreeMemory(proc.pid)
    assert proc.stdout is not None
    output = proc.stdout.read()
    proc.stdout.close()
    peak_mb = memory.stop()
    _, status, usage = os.wait4(proc.pid, 0)
    exited = time.time()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"the import failed (exit {proc.returncode}): {output}")
    run: dict[str, Any] = json.loads(output)
    started = datetime.fromisoformat(run["started_at"]).timestamp()
    finished = datetime.fromisoformat(run["finished_at"]).timestamp()
    return {
        "status": run["status"],
        "message": run["message"],
        "kind": run.get("kind"),
        # The run's own duration (what the run records and the console shows) is the
        # figure judged; the process's wall time adds the CLI's start-up and exit.
        "seconds": finished - started,
        "resolution_seconds": float(
            (run.get("summary") or {}).get("profiles", {}).get("seconds", 0.0)
        ),
        "wall_seconds": exited - launched,
        "times": {
            "launched": launched,
            "started": started,
            "finished": finished,
            "exited": exited,
        },
        "counters": run["counters"],
        # ru_maxrss (KiB) is the largest single process, a floor under the sampled sum.
        "peak_rss_mb": max(peak_mb, usage.ru_maxrss / 1024),
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


def fresh_pg_schema() -> str:
    import psycopg

    name = f"bench_{os.getpid()}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        conn.execute(f"CREATE SCHEMA {name}")
    return f"{PG_URL}?schema={name}"


def drop_pg_schema(url: str) -> None:
    import psycopg

    name = url.rsplit("=", 1)[1]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def throughput(customers: int, engines: list[str]) -> bool:
    ok = True
    t0 = time.perf_counter()
    with start_sandbox(customers=customers, seed=1) as sb:
        print(f"sandbox with {customers:,} customers ready in {time.perf_counter() - t0:.1f}s")
        cpu = sandbox_cpu(sb)
        bare, seen = yardstick(sb)
        print(
            f"yardstick: bare HTTP paging {seen:,} customers at {bare:,.0f} customers/s "
            f"(sandbox CPU {(sandbox_cpu(sb) - cpu) / seen * 1e6:.1f} us/customer)"
        )
        for engine in engines:
            url = fresh_pg_schema() if engine == "postgresql" else "default"
            cpu = sandbox_cpu(sb)
            try:
                result = import_once(sb, url, rps=1000.0)
            finally:
                if engine == "postgresql":
                    drop_pg_schema(url)
            written = result["counters"]["written"]
            resolution = result["resolution_seconds"]  # as in `latency_bound`
            rate = written / (result["seconds"] - resolution)
            ratio = rate / bare
            good = result["status"] == "succeeded" and written == customers
            good = good and ratio >= 0.8 and result["peak_rss_mb"] < 400
            ok &= good
            print(
                f"{engine:>8}: {written:,} customers in {result['seconds'] - resolution:.1f}s "
                f"(and identity resolution {resolution:.1f}s) = {rate:,.0f}/s; ratio to "
                f"yardstick {at_least(ratio, 2)} (target >= 0.80; issue 16: >= 0.45 at 1,000,000); "
                f"peak RSS {result['peak_rss_mb']:.0f} MB (target < 400) "
                f"{'OK' if good else 'MISSED'}"
            )
            print(
                f"          CPU per customer: importer {result['cpu_seconds'] / written * 1e6:.1f}"
                f" us, sandbox {(sandbox_cpu(sb) - cpu) / written * 1e6:.1f} us"
            )
    return ok


@dataclass(frozen=True)
class Scenario:
    """A latency-bound import: the sandbox's latency and concurrency limit, our cap."""

    median_ms: float
    concurrency_limit: int = 0  # 0: none
    cap: int = 20  # HEADWATER_STRIPE_MAX_IN_FLIGHT
    target: float = 0.92

    @property
    def label(self) -> str:
        limit = f", sandbox concurrency {self.concurrency_limit}" if self.concurrency_limit else ""
        latency = f"{self.median_ms:g} ms median (p99 {3 * self.median_ms:g} ms)"
        return f"{latency}{limit}, cap {self.cap}"


SCENARIOS = [
    Scenario(100),
    Scenario(300),
    Scenario(1000, cap=20, target=0.0),  # reported: the cap binds below the budget
    Scenario(1000, cap=32),
    Scenario(300, concurrency_limit=10, target=0.9),
]
BUDGET = 25.0  # requests/s: Stripe's per-endpoint limit, the sandbox's and the client's


def mean_latency(sb: RunningSandbox, requests: int = 30) -> float:
    """The mean seconds per page of 100 customers, measured one at a time."""
    headers = {"Authorization": f"Bearer {sb.secret_key}"}
    total = 0.0
    with httpx.Client(base_url=sb.url, headers=headers, timeout=60) as client:
        for _ in range(requests):
            began = time.perf_counter()
            client.get("/v1/customers", params={"limit": 100}).raise_for_status()
            total += time.perf_counter() - began
            time.sleep(max(0.0, 1 / BUDGET - (time.perf_counter() - began)))
    return total / requests


def latency_bound(sb: RunningSandbox, scenario: Scenario, customers: int) -> tuple[bool, float]:
    """Run one scenario: whether it met its targets, and its share of what is allowed."""
    m = scenario.median_ms
    sb.control(
        latency_median_ms=m,
        latency_p99_ms=3 * m,
        concurrency_limit=scenario.concurrency_limit,
        rate_limit=BUDGET,
        endpoint_rate_limit=BUDGET,
    )
    allowed = BUDGET * 100  # customers/s the budget allows
    measured = ""
    if scenario.concurrency_limit:  # and what that many in flight allow at this latency
        mean = mean_latency(sb)
        allowed = min(allowed, scenario.concurrency_limit / mean * 100)
        measured = f"measured mean latency {mean * 1000:.0f} ms; "
    sb.reset_stats()
    env = {"HEADWATER_STRIPE_MAX_IN_FLIGHT": str(scenario.cap)}
    result = import_once(sb, "default", rps=BUDGET, extra_env=env)
    stats = sb.stats()
    trace = describe(result["times"], sb.timeline(), BUDGET)
    written = result["counters"]["written"]
    # The import is the run less the identity resolution that follows its last write
    # (issue 14's, timed in the run's summary); both ratios are printed.
    resolution = result["resolution_seconds"]
    imported = result["seconds"] - resolution
    rate = written / imported
    requests = stats["requests"]
    limited = stats["rate_limited"] / requests
    failed = stats["server_errors"] + stats["malformed"]
    good = result["status"] == "succeeded" and written == customers
    good = good and rate >= scenario.target * allowed and failed == 0 and limited <= 0.02
    print(
        f"  {scenario.label}: {measured}{written:,} customers "
        f"in {imported:.1f}s = {rate:,.0f}/s = {at_least(rate / allowed)} of the "
        f"{allowed:,.0f}/s allowed (target >= {scenario.target:.2f}); {requests} requests "
        f"({written / requests:.1f} customers each), {stats['rate_limited']} answered 429 "
        f"({limited:.1%}, target <= 2%), {failed} failed {'OK' if good else 'MISSED'}"
    )
    whole = written / result["seconds"] / allowed
    wall = written / result["wall_seconds"] / allowed
    print(
        f"    with identity resolution ({resolution:.1f}s) the run took {result['seconds']:.1f}s "
        f"({whole:.3f}); process wall time {result['wall_seconds']:.1f}s ({wall:.3f})"
    )
    print(f"    {trace}")
    return good, rate / allowed


def budget(customers: int, only: str, repeat: int = 1) -> bool:
    """The latency scenarios (`only`: their indexes), each run `repeat` times in a row."""
    ok = True
    with start_sandbox(customers=customers, seed=2) as sb:
        for index, scenario in enumerate(SCENARIOS):
            if only and str(index) not in only.split(","):
                continue
            ratios = []
            for _ in range(repeat):
                good, ratio = latency_bound(sb, scenario, customers)
                ok &= good
                ratios.append(ratio)
            if repeat > 1:
                print(f"    {scenario.label}, {over_runs(ratios, scenario.target)}")
    return ok


def make_changes(sb: RunningSandbox, count: int) -> None:
    """`count` changes through the API (40 % creates, 40 % updates, 20 % deletes of
    distinct existing customers), from 8 threads, 100 per second of the sandbox's clock."""
    headers = {"Authorization": f"Bearer {sb.secret_key}"}
    with httpx.Client(base_url=sb.url, headers=headers, timeout=60) as client:
        ids: list[str] = []
        params: dict[str, Any] = {"limit": 100}
        while len(ids) < count * 3 // 5:
            page = client.get("/v1/customers", params=params).json()
            ids += [c["id"] for c in page["data"]]
            params["starting_after"] = ids[-1]

        def one(i: int) -> None:
            kind = i % 5
            if kind in (0, 2):
                client.post("/v1/customers", data={"email": f"new{i}@example.com"})
            elif kind in (1, 3):
                client.post(f"/v1/customers/{ids[i // 5 * 2 + kind // 2]}", data={"name": "n"})
            else:
                client.delete(f"/v1/customers/{ids[count // 5 * 2 + i // 5]}")

        with ThreadPoolExecutor(8) as pool:
            for start in range(0, count, 500):
                list(pool.map(one, range(start, min(count, start + 500))))
                # Pending changes pile up over time: 100 a second, not all at once.
                sb.advance_clock(5)


def incremental(pending: int) -> bool:
    """An incremental run with `pending` changes at 300 ms: >= 0.8 of the events
    endpoint's budget (2,500 events/s at 25 requests/s)."""
    customers = pending * 3 // 5 + 1000
    with start_sandbox(customers=customers, seed=3) as sb:
        # An account with a change history: the full run saves an event as its position
        # (with none, the first incremental run walks back from the newest event).
        make_changes(sb, 1)

        def change_then_slow_down() -> None:
            make_changes(sb, pending)
            sb.control(latency_median_ms=300, latency_p99_ms=900)
            sb.control(rate_limit=BUDGET, endpoint_rate_limit=BUDGET)
            sb.reset_stats()

        result = import_once(sb, "default", rps=BUDGET, before=change_then_slow_down)
        stats = sb.stats()
        trace = describe(result["times"], sb.timeline(), BUDGET, "GET /v1/events")
    events = stats["by_path"].get("GET /v1/events", 0)
    resolution = result["resolution_seconds"]
    rate = pending / (result["seconds"] - resolution)  # as in `latency_bound`
    allowed = BUDGET * 100
    failed = stats["server_errors"] + stats["malformed"]
    good = result["status"] == "succeeded" and result["kind"] == "incremental"
    good = good and rate >= 0.8 * allowed and failed == 0
    print(
        f"  incremental: {pending:,} pending changes at 300 ms median (p99 900 ms): "
        f"{result['kind']} run in {result['seconds'] - resolution:.1f}s (and identity "
        f"resolution {resolution:.1f}s) = {rate:,.0f} events/s = "
        f"{at_least(rate / allowed)} of the {allowed:,.0f}/s the events budget allows (target "
        f">= 0.80); {events} event requests ({pending / max(events, 1):.1f} events each), "
        f"{stats['rate_limited']} answered 429, {failed} failed; peak RSS "
        f"{result['peak_rss_mb']:.0f} MB {'OK' if good else 'MISSED'}"
    )
    print(f"    {trace}")
    return good


def runs(text: str) -> int:
    """`--repeat`: a whole number of runs, at least one."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of runs, 1 or more: {text!r}")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--latency-customers", type=int, default=40_000)
    parser.add_argument("--scenarios", default="", help="indexes of SCENARIOS to run, e.g. 0,1")
    parser.add_argument(
        "--repeat", type=runs, default=1, help="runs of each latency scenario, one after another"
    )
    parser.add_argument("--pending", type=int, default=50_000, help="0: no incremental run")
    parser.add_argument(
        "--engines", type=engine_list, default="duckdb,postgresql", help="duckdb,postgresql"
    )
    args = parser.parse_args()
    ok = throughput(args.customers, args.engines) if args.customers else True
    if args.latency_customers:
        ok &= budget(args.latency_customers, args.scenarios, args.repeat)
    if args.pending:
        ok &= incremental(args.pending)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
