"""Import speed, as ratios against yardsticks measured in the same run (issue 3 §8).

1. Throughput: a full import of N sandbox customers into DuckDB and into PostgreSQL,
   against the rate at which a bare HTTP client merely pages through the same sandbox.
   Target: ratio >= 0.80, peak RSS of the importing processes (summed) < 400 MB.
   The import is `headwater pipelines run ID --json` in its own process, after the
   connection and pipeline were added with the CLI, as a user would do it.
2. Budget: sandbox with 100 ms latency per request and a 25 req/s limit; the import
   must sustain >= 90% of the 2,500 customers/s that limit allows, with zero failed
   (429/5xx) requests.

    python bench/import.py                       # 1,000,000 customers (slow start-up)
    python bench/import.py --customers 200000 --latency-customers 50000
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
from datetime import datetime
from typing import Any

import psutil

from headwater.sandbox.testing import RunningSandbox, start_sandbox
from paging import yardstick

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


def import_once(sb: RunningSandbox, warehouse: str, rps: float) -> dict[str, Any]:
    """Set up with the CLI, then time `headwater pipelines run` as a user would run it."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HEADWATER_HOME": home, "BENCH_STRIPE_KEY": sb.secret_key}
        if warehouse != "default":
            done = subprocess.run(
                [*HEADWATER, "warehouse", "set", warehouse],
                env=env,
                stdout=subprocess.DEVNULL,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"headwater warehouse set {warehouse} failed")
        connection = cli(
            [
                "connections",
                "add",
                "stripe",
                "--name",
                "bench",
                "--api-key-env",
                "BENCH_STRIPE_KEY",
                "--base-url",
                sb.url,
                "--requests-per-second",
                str(rps),
            ],
            env,
        )
        pipeline = cli(["pipelines", "add", "--connection", connection["id"], "--name", "b"], env)
        proc = subprocess.Popen(
            [*HEADWATER, "pipelines", "run", pipeline["id"], "--json"],
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
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"import into {warehouse} failed (exit {proc.returncode}): {output}")
    run: dict[str, Any] = json.loads(output)
    started = datetime.fromisoformat(run["started_at"])
    seconds = (datetime.fromisoformat(run["finished_at"]) - started).total_seconds()
    return {
        "status": run["status"],
        "message": run["message"],
        "seconds": seconds,
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
            url = fresh_pg_schema() if engine == "postgres" else "default"
            cpu = sandbox_cpu(sb)
            try:
                result = import_once(sb, url, rps=1000.0)
            finally:
                if engine == "postgres":
                    drop_pg_schema(url)
            written = result["counters"]["written"]
            rate = written / result["seconds"]
            ratio = rate / bare
            good = result["status"] == "succeeded" and written == customers
            good = good and ratio >= 0.8 and result["peak_rss_mb"] < 400
            ok &= good
            print(
                f"{engine:>8}: {written:,} customers in {result['seconds']:.1f}s = "
                f"{rate:,.0f}/s; ratio to yardstick {ratio:.2f} (target >= 0.80); "
                f"peak RSS {result['peak_rss_mb']:.0f} MB (target < 400) "
                f"{'OK' if good else 'MISSED'}"
            )
            print(
                f"          CPU per customer: importer {result['cpu_seconds'] / written * 1e6:.1f}"
                f" us, sandbox {(sandbox_cpu(sb) - cpu) / written * 1e6:.1f} us"
            )
    return ok


def budget(customers: int) -> bool:
    limit = 25.0
    with start_sandbox(customers=customers, seed=2, latency_ms=100, rate_limit=limit) as sb:
        sb.reset_stats()
        # The client's token bucket spaces requests evenly (burst 1), so a budget just
        # under the account's limit never trips it: measured 0 429s at 99% and 100%.
        result = import_once(sb, "default", rps=limit * 0.99)
        stats = sb.stats()
    allowed = limit * 100
    rate = result["counters"]["written"] / result["seconds"]
    failed = stats["rate_limited"] + stats["server_errors"]
    good = rate >= 0.9 * allowed and failed == 0 and result["status"] == "succeeded"
    print(
        f"  budget: {customers:,} customers at 100 ms latency, {limit:.0f} req/s limit: "
        f"{rate:,.0f}/s = {rate / allowed:.2f} of the {allowed:,.0f}/s allowed (target "
        f">= 0.90); {stats['requests']} requests, {failed} failed "
        f"{'OK' if good else 'MISSED'}"
    )
    return good


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--latency-customers", type=int, default=100_000)
    parser.add_argument("--engines", default="duckdb,postgres")
    args = parser.parse_args()
    ok = throughput(args.customers, args.engines.split(",")) if args.customers else True
    if args.latency_customers:
        ok &= budget(args.latency_customers)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
