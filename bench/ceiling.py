"""How close to the yardstick can any Python importer get on this machine?

Issue 3 §8 asks the importer for >= 0.80 of the rate at which one bare client pages
through the sandbox (`paging.yardstick`).  This bench measures, in the same run and
against the same yardstick, a deliberately minimal importer that keeps only the work
no importer can skip, spread over several processes so that it uses every core:

1. read:   N processes page disjoint `created` windows (same HTTP client and JSON
           parser as the yardstick) and count the customers;
2. shape:  ... and also pull the 13 Default Customer Model columns out column-wise,
           build an Arrow table per 5,000 customers and hand it to the parent;
3. write:  ... and the parent INSERTs each table into a DuckDB table with the
           identities' unique key.

It is NOT Headwater's importer: no filter, no transformation language, no type checks,
no per-record errors, no retries or rate budget, no state, no profiles, no purge.  What
it reaches is an upper bound for an importer written in Python on this machine, where
the sandbox, the importer and the warehouse share the same cores.

    python bench/ceiling.py [--customers 200000] [--processes 2]
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import tempfile
import time
from multiprocessing.connection import Connection, wait
from typing import Any

import duckdb
import httpx
import orjson
import pyarrow as pa

from headwater.sandbox.testing import start_sandbox
from paging import yardstick

BATCH = 5_000
STAGES = ("read", "shape", "write")
ADDRESS = ("line1", "line2", "city", "postal_code", "state", "country")


def columns(customers: list[dict[str, Any]]) -> pa.Table:
    """The Default Customer Model's columns, extracted column by column."""
    names = [(c.get("name") or "").strip().split(" ", 1) for c in customers]
    addresses = [c.get("address") or {} for c in customers]
    data: dict[str, Any] = {
        "_source_id": [c["id"] for c in customers],
        "email": [c.get("email") for c in customers],
        "first_name": [n[0] or None for n in names],
        "last_name": [n[1].strip() or None if len(n) > 1 else None for n in names],
        "phone": [c.get("phone") for c in customers],
        "currency": [c.get("currency") for c in customers],
        "created_at": pa.array([c["created"] for c in customers], pa.int64()).cast(
            pa.timestamp("s", tz="UTC")
        ),
        "metadata": [orjson.dumps(c.get("metadata")).decode() for c in customers],
    }
    for part in ADDRESS:
        data[f"address_{part}"] = [a.get(part) for a in addresses]
    return pa.table(data)


def worker(url: str, key: str, windows: list[tuple[int, int]], stage: str, out: Connection) -> None:
    out.send_bytes(b"ready")
    out.recv_bytes()  # go
    count, held = 0, []
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for lo, hi in windows:
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 100, "created[gte]": lo, "created[lt]": hi}
                if cursor:
                    params["starting_after"] = cursor
                page = orjson.loads(client.get("/v1/customers", params=params).content)
                data = page["data"]
                count += len(data)
                if stage != "read":
                    held.extend(data)
                    if len(held) >= BATCH or (not page["has_more"] and held):
                        sink = pa.BufferOutputStream()
                        table = columns(held)
                        with pa.ipc.new_stream(sink, table.schema) as stream:
                            stream.write_table(table)
                        out.send_bytes(sink.getvalue().to_pybytes())
                        held = []
                if not page["has_more"]:
                    break
                cursor = data[-1]["id"]
    out.send_bytes(b"done " + str(count).encode())


def windows_of(created: list[int], pieces: int) -> list[tuple[int, int]]:
    """Half-open `created` windows holding about equally many customers."""
    ordered = sorted(created)
    cuts = sorted({ordered[len(ordered) * i // pieces] for i in range(1, pieces)})
    bounds = [0, *cuts, ordered[-1] + 1]
    return list(itertools.pairwise(bounds))


def measure(url: str, key: str, windows: list[tuple[int, int]], stage: str, procs: int) -> float:
    ctx = mp.get_context("spawn")
    pipes, workers = [], []
    for i in range(procs):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(url, key, windows[i::procs], stage, child))
        proc.start()
        pipes.append(parent)
        workers.append(proc)
    for pipe in pipes:
        assert pipe.recv_bytes() == b"ready"
    home = tempfile.mkdtemp()
    db = duckdb.connect(os.path.join(home, "ceiling.duckdb"))
    db.execute(
        "CREATE TABLE identities (_pipeline_id VARCHAR, _source_id VARCHAR, email VARCHAR, "
        "first_name VARCHAR, last_name VARCHAR, phone VARCHAR, currency VARCHAR, "
        "created_at TIMESTAMPTZ, metadata JSON, address_line1 VARCHAR, address_line2 VARCHAR, "
        "address_city VARCHAR, address_postal_code VARCHAR, address_state VARCHAR, "
        "address_country VARCHAR, UNIQUE (_pipeline_id, _source_id))"
    )
    start = time.perf_counter()
    for pipe in pipes:
        pipe.send_bytes(b"go")
    live, total = set(pipes), 0
    while live:
        for pipe in wait(list(live)):
            assert isinstance(pipe, Connection)
            message = pipe.recv_bytes()
            if message.startswith(b"done "):
                total += int(message[5:])
                live.discard(pipe)
            elif stage == "write":
                batch = pa.ipc.open_stream(message).read_all()  # noqa: F841 (read by SQL)
                db.execute("INSERT INTO identities SELECT 'pipeline', * FROM batch")
    seconds = time.perf_counter() - start
    for proc in workers:
        proc.join()
    db.close()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    with start_sandbox(customers=args.customers, seed=1) as sb:
        created: list[int] = []
        bare, seen = yardstick(sb, lambda page: created.extend(c["created"] for c in page))
        print(f"yardstick: bare HTTP paging {seen:,} customers at {bare:,.0f} customers/s")
        windows = windows_of(created, 8 * args.processes)
        for stage in STAGES:
            rate = measure(sb.url, sb.secret_key, windows, stage, args.processes)
            print(
                f"{stage:>6} in {args.processes} processes: {rate:,.0f} customers/s = "
                f"{rate / bare:.2f} of the yardstick"
            )


if __name__ == "__main__":
    main()
