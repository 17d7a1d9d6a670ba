"""Near-real-time lag: a change in Stripe (the sandbox) to its row in the warehouse,
through the sandbox's signed webhook deliveries and a real `headwater serve` with
workers, with no schedule and no "run now".

    python bench/webhooks.py [--changes 100] [--seconds 60] [--customers 1000]
                             [--warehouse-url postgresql://127.0.0.1:5432/test]

Each change (alternately a new customer and an update of an existing one) carries a
unique email; a watcher thread polls the warehouse itself (the PostgreSQL identities
table) every 20 ms and notes when each email appears.  Lag is that moment minus the
moment the change was sent to the sandbox.  Targets (issue 15): median under 2 s, 95th
percentile under 5 s, printed as ratios (measured / target, so <= 1.0 passes).

Yardstick, measured in the same run: the sandbox's own delivery latency to a bare
HTTP receiver that only records arrival (the part of the lag no receiver can remove).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psycopg

from headwater.kernel.settings import Settings
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.pipelines import manage, runner
from headwater.services.warehouse import set_url
from headwater.services.webhooks import endpoints

MEDIAN_TARGET = 2.0
P95_TARGET = 5.0
MAPPING = {"kind": "mapping", "mapping": {"email": "email"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--warehouse-url", default="postgresql://127.0.0.1:5432/test")
    args = parser.parse_args()
    schema = f"bench_wh_{uuid.uuid4().hex[:8]}"
    with start_sandbox(customers=args.customers, seed=31) as sandbox:
        yard = yardstick(sandbox, min(args.changes, 30))
        try:
            lags = measure(sandbox, args, schema)
        finally:
            with psycopg.connect(args.warehouse_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    report(lags, yard, args.changes)


def yardstick(sandbox: RunningSandbox, changes: int) -> list[float]:
    """Delivery latency from the sandbox to a receiver that does nothing."""
    arrived: dict[str, float] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            arrived[body.split(b'"email":"', 1)[1].split(b'"', 1)[0].decode()] = time.monotonic()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = sandbox.add_webhook(f"http://127.0.0.1:{server.server_address[1]}/", None)
    client = _client(sandbox)
    sent: dict[str, float] = {}
    try:
        for i in range(changes):
            email = f"yard{i}@example.com"
            sent[email] = time.monotonic()
            client.post("/v1/customers", data={"email": email}).raise_for_status()
            time.sleep(0.05)
        deadline = time.monotonic() + 30
        while len(arrived) < changes and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        client.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
        client.close()
        server.shutdown()
        server.server_close()
    return [arrived[e] - sent[e] for e in sent if e in arrived]


def measure(sandbox: RunningSandbox, args: argparse.Namespace, schema: str) -> list[float]:
    home = Path(tempfile.mkdtemp(prefix="hw-bench-webhooks-"))
    app = App.open(Settings.embedded(home))
    conn = connections.add_stripe(app, "sandbox", sandbox.secret_key, sandbox.url, 100.0)
    pipe = manage.create(app, conn.id, "customers", MAPPING, incremental=True)
    set_url(app, f"{args.warehouse_url}?schema={schema}")
    first = runner.run_pipeline(app, pipe.id)  # the first run is full; later ones follow
    assert first.status == "succeeded", first.message
    port = _free_port()
    env = {**os.environ, "HEADWATER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    env.pop("HEADWATER_DATABASE_URL", None)
    serve = subprocess.Popen(
        [sys.executable, "-m", "headwater", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url)
        endpoints.register(app, conn.id, url)
        return _changes(sandbox, args, schema, pipe.id)
    finally:
        serve.terminate()
        serve.wait(timeout=60)
        app.close()


def _changes(
    sandbox: RunningSandbox, args: argparse.Namespace, schema: str, pipeline_id: str
) -> list[float]:
    seen: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(args.warehouse_url, schema, pipeline_id, seen, stop), daemon=True
    )
    watcher.start()
    client = _client(sandbox)
    existing = [c["id"] for c in client.get("/v1/customers", params={"limit": 100}).json()["data"]]
    sent: dict[str, float] = {}
    interval = args.seconds / args.changes
    start = time.monotonic()
    for i in range(args.changes):
        time.sleep(max(0.0, start + i * interval - time.monotonic()))
        email = f"lag{i}-{uuid.uuid4().hex[:6]}@example.com"
        sent[email] = time.monotonic()
        if i % 2:
            client.post(f"/v1/customers/{existing[i % len(existing)]}", data={"email": email})
        else:
            client.post("/v1/customers", data={"email": email})
    deadline = time.monotonic() + 60
    while not set(sent) <= set(seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    watcher.join()
    client.close()
    missing = set(sent) - set(seen)
    if missing:
        print(f"{len(missing)} of {len(sent)} changes never reached the warehouse within 60 s")
    return [seen[e] - sent[e] for e in sent if e in seen]


def _watch(
    url: str, schema: str, pipeline_id: str, seen: dict[str, float], stop: threading.Event
) -> None:
    query = f'SELECT email FROM "{schema}".identities WHERE _pipeline_id = %s'
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            now = time.monotonic()
            for (email,) in conn.execute(query, [pipeline_id]):
                if email and email not in seen:
                    seen[email] = now
            time.sleep(0.02)


def report(lags: list[float], yard: list[float], changes: int) -> None:
    if not lags:
        print("no change reached the warehouse")
        return
    lags.sort()
    median = statistics.median(lags)
    p95 = lags[min(len(lags) - 1, round(0.95 * len(lags)) - 1)]
    yard_median = statistics.median(yard) if yard else float("nan")
    print(f"changes landed: {len(lags)} of {changes}")
    print(f"yardstick (sandbox -> bare receiver) median: {yard_median * 1000:.0f} ms")
    print(
        f"lag median: {median:.2f} s, ratio to target {median / MEDIAN_TARGET:.2f} "
        f"({median / yard_median:.1f}x the yardstick)"
    )
    print(f"lag p95:    {p95:.2f} s, ratio to target {p95 / P95_TARGET:.2f}")
    print(f"lag max:    {lags[-1]:.2f} s")


def _client(sandbox: RunningSandbox) -> httpx.Client:
    return httpx.Client(
        base_url=sandbox.url,
        headers={"Authorization": f"Bearer {sandbox.secret_key}"},
        timeout=30,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("headwater serve did not start")


if __name__ == "__main__":
    main()
