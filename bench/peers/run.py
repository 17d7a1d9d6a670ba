"""Peers beside Headwater, against the same sandbox in the same conditions (issue 16).

tap-stripe 3.3.0 (Singer, records to stdout) and dlt 1.31.0 (customers into DuckDB)
are installed with pip into virtual environments of their own under
``$HEADWATER_PEERS_HOME`` (default ``~/.cache/headwater-peers``); none of their code is
in this repository.  One sandbox serves all three, reset between them: N customers,
a budget of 25 requests/s (the sandbox's global and per-endpoint limits, and
Headwater's connection budget), lognormal latency with the given median and a p99
three times it.  Each tool's customers/s is printed as a ratio to the 2,500/s the
budget allows, with its requests and 429s as the sandbox counted them.

How the peers are pointed at the sandbox (the only changes to how they run):
- tap-stripe talks to ``api.stripe.com`` through the ``stripe`` SDK; a wrapper sets
  ``stripe.api_base`` to the sandbox and answers the tap's start-up
  ``Account.retrieve`` itself (the sandbox has no accounts endpoint), and drops the
  tap's per-request metrics timer (it parses URLs expecting ``api.stripe.com``).  Only the
  ``customers`` stream is selected; its records go to a pipe that counts them.
- dlt has no Stripe source in its package (its verified source is copied in with
  ``dlt init``, which needs the network): a `dlt.resource` pages ``/v1/customers``
  with ``starting_after`` through dlt's own ``requests`` helper (retries included),
  as that verified source does, into a DuckDB file.

With ``--unlimited`` the sandbox answers at once and limits nothing (Headwater's
connection budget is `bench/import.py`'s zero-latency one, 1,000 requests/s): the
conditions of the zero-latency scenario, where each tool's speed and its CPU seconds
per 1,000 customers (its processes, the sandbox's left out) are what to compare.

    python bench/peers/run.py --customers 40000 --median-ms 300
    python bench/peers/run.py --customers 100000 --unlimited
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))

from headwater.sandbox.testing import RunningSandbox, start_sandbox  # noqa: E402

PEERS = {
    "tap-stripe": ["tap-stripe==3.3.0"],
    "dlt": ["dlt[duckdb]==1.31.0"],
}
BUDGET = 25.0

TAP_WRAPPER = """
import sys
import stripe
stripe.api_base = sys.argv[1]
account = {"id": "acct_sandbox", "object": "account",
           "settings": {"dashboard": {"display_name": "sandbox"}}}
stripe.Account.retrieve = staticmethod(
    lambda *a, **k: stripe.Account.construct_from(account, stripe.api_key))
sys.argv = ["tap-stripe", *sys.argv[2:]]
import tap_stripe
# Its request timer parses the URL with a regex that expects api.stripe.com.
tap_stripe.apply_request_timer_to_client = lambda client: None
tap_stripe.main()
"""

DLT_PIPELINE = """
import sys
import dlt
from dlt.sources.helpers import requests

url, key, target = sys.argv[1:4]

@dlt.resource(name="customers", write_disposition="replace", primary_key="id")
def customers():
    params = {"limit": 100}
    while True:
        response = requests.get(
            url + "/v1/customers", params=params, headers={"Authorization": "Bearer " + key}
        )
        response.raise_for_status()
        page = response.json()
        yield page["data"]
        if not page["has_more"]:
            return
        params["starting_after"] = page["data"][-1]["id"]

pipeline = dlt.pipeline(
    pipeline_name="peer", destination=dlt.destinations.duckdb(target), dataset_name="stripe"
)
info = pipeline.run(customers())
with pipeline.sql_client() as client:
    print(client.execute_sql("SELECT count(*) FROM customers")[0][0])
"""


def venv(name: str) -> Path:
    """The peer's interpreter, installing it (pinned) the first time."""
    home = Path(os.environ.get("HEADWATER_PEERS_HOME", Path.home() / ".cache/headwater-peers"))
    root = home / name
    python = root / "bin" / "python"
    marker = root / ".installed"
    if not marker.exists() or marker.read_text() != " ".join(PEERS[name]):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS[name]], check=True)
        marker.write_text(" ".join(PEERS[name]))
    return python


def tap_stripe(sb: RunningSandbox, work: Path) -> int:
    python = venv("tap-stripe")
    config = work / "tap.json"
    config.write_text(
        json.dumps(
            {
                "client_secret": sb.secret_key,
                "account_id": "acct_sandbox",
                "start_date": "2000-01-01T00:00:00Z",
            }
        )
    )
    base = [str(python), "-c", TAP_WRAPPER, sb.url, "--config", str(config)]
    found = subprocess.run([*base, "--discover"], capture_output=True, text=True, check=True)
    catalog: dict[str, Any] = json.loads(found.stdout)
    catalog["streams"] = [s for s in catalog["streams"] if s["tap_stream_id"] == "customers"]
    for entry in catalog["streams"][0]["metadata"]:
        if entry["breadcrumb"] == []:
            entry["metadata"]["selected"] = True
    (work / "catalog.json").write_text(json.dumps(catalog))
    proc = subprocess.Popen(
        [*base, "--catalog", str(work / "catalog.json")],
        stdout=subprocess.PIPE,
        stderr=(work / "tap.log").open("wb"),
    )
    assert proc.stdout is not None
    records = sum(1 for line in proc.stdout if line.startswith(b'{"type": "RECORD"'))
    if proc.wait() != 0:
        log = (work / "tap.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"tap-stripe failed (exit {proc.returncode}): {log}")
    return records


def dlt(sb: RunningSandbox, work: Path) -> int:
    python = venv("dlt")
    env = {**os.environ, "DLT_DATA_DIR": str(work / "dlt"), "RUNTIME__LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [str(python), "-c", DLT_PIPELINE, sb.url, sb.secret_key, str(work / "peer.duckdb")],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"dlt failed: {done.stderr[-2000:]}")
    return int(done.stdout.strip().splitlines()[-1])


#: Headwater's connection budget (requests/s): the sandbox's limit, or with
#: ``--unlimited`` `bench/import.py`'s zero-latency one.
RPS = {"budget": BUDGET, "unlimited": 1000.0}


def headwater(sb: RunningSandbox, _work: Path, mode: str = "budget") -> tuple[int, float]:
    """Headwater's run as `bench/import.py` times it: the run's own start to finish
    (the CLI's set-up before it is not the import)."""
    bench_import = importlib.import_module("import")
    result = bench_import.import_once(sb, "default", rps=RPS[mode])
    return int(result["counters"]["written"]), float(result["seconds"])


def children_cpu() -> float:
    """CPU seconds (user + system) of the ended child processes so far (every tool
    runs in children; the sandbox, still running, is not among them)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=40_000)
    parser.add_argument("--median-ms", type=float, default=300.0)
    parser.add_argument("--tools", default="headwater,tap-stripe,dlt")
    parser.add_argument(
        "--unlimited", action="store_true", help="no latency and no limits in the sandbox"
    )
    args = parser.parse_args()
    tools: dict[str, Callable[[RunningSandbox, Path], int | tuple[int, float]]] = {
        "headwater": headwater,
        "tap-stripe": tap_stripe,
        "dlt": dlt,
    }
    for name in args.tools.split(","):
        if name in PEERS:
            venv(name)  # installed before anything is timed
    m = 0.0 if args.unlimited else args.median_ms
    if args.unlimited:
        print(f"{args.customers:,} customers, no latency, no limits")
        limits: dict[str, float] = {}
    else:
        print(
            f"{args.customers:,} customers, budget {BUDGET:g} requests/s, latency median "
            f"{m:g} ms (p99 {3 * m:g} ms); the budget allows {BUDGET * 100:,.0f} customers/s"
        )
        limits = {"rate_limit": BUDGET, "endpoint_rate_limit": BUDGET}
    with start_sandbox(
        customers=args.customers, seed=2, latency_median_ms=m, latency_p99_ms=3 * m, **limits
    ) as sb:
        for name in args.tools.split(","):
            sb.reset_stats()
            cpu = children_cpu()
            with tempfile.TemporaryDirectory() as work:
                began = time.perf_counter()
                if name == "headwater":
                    outcome = headwater(sb, Path(work), "unlimited" if args.unlimited else "budget")
                else:
                    outcome = tools[name](sb, Path(work))
                seconds = time.perf_counter() - began
            cpu = children_cpu() - cpu
            count, seconds = outcome if isinstance(outcome, tuple) else (outcome, seconds)
            stats = sb.stats()
            rate = count / seconds
            share = "" if args.unlimited else f" = {rate / (BUDGET * 100):.3f} of the budget"
            print(
                f"  {name:>10}: {count:,} customers in {seconds:.1f}s = {rate:,.0f}/s{share}; "
                f"CPU {1000 * cpu / max(count, 1):.2f} s per 1,000 (set-up included); "
                f"{stats['requests']} requests, {stats['rate_limited']} answered 429"
            )


if __name__ == "__main__":
    main()
