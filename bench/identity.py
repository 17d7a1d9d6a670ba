"""Identity resolution in the warehouse, against the import of the same customers.

    python bench/identity.py [--identities 1000000] [--changes 1000] [--seed 7]
                             [--engines duckdb,postgresql] [--pg-url URL] [--statements]

Synthetic customers of `identity_core.synthetic` (two pipelines on two connections,
about 30% sharing an email in case and whitespace variants, 10% phone-only), with the
identifiers email then phone.  For each engine, in one run, it prints:

- import: writing every identity through `Warehouse.write` (batches of 5,000: the run
  engine's write path, which records the pending identities) and closing the
  warehouse, which makes them durable (DuckDB checkpoints its write-ahead log there),
  the yardstick;
- rebuild: the first resolution after that import (a full rebuild: every identity is
  pending), in the warehouse opened again, and its close (DuckDB checkpoints the
  rebuild's writes), as a ratio of the import (targets: <= 0.25 DuckDB, <= 0.5
  PostgreSQL);
- growth: the same at a quarter of the identities, rebuild(n) / rebuild(n/4)
  (target <= 5; linear is 4);
- incremental: the next run (the warehouse closed after the rebuild, as the first
  run's process does, and opened again) writes `--changes` changed identities (half take
  another customer's email: merges; half a fresh one: splits); its resolution step as a
  share of the rebuild (target <= 2%);
- peak RSS of the process while rebuilding (target < 500 MB; Linux ``clear_refs``
  resets the peak before each step), and over the whole bench;
- with ``--realistic``, identities as wide as real customers (an address, a currency,
  metadata: `identity_core.realistic_values`) instead of an email, a phone and a name;
- with ``--statements``, every statement of the incremental step and its time, and
  those of the rebuild taking 50 ms or more.  The identities are
  generated as they are written, never held.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from itertools import groupby, islice
from pathlib import Path
from typing import Any

import psycopg

from engines import engine_list
from figures import at_most
from headwater.adapters.warehouse import Warehouse, WriteBatch, connect
from headwater.kernel.model import DEFAULT_MODEL
from headwater.kernel.records import IdentityRow
from headwater.services.identity import Context, Identity
from headwater.services.pipelines.engine import fewer_collections
from headwater.services.profiles import resolve_warehouse
from identity_core import SETTINGS, T0, synthetic_stream

BATCH = 5_000
#: `--realistic`: identities with an address, a currency and metadata besides.
REALISTIC = False
ORDER = ("pl_a", "pl_b")
CONNECTIONS = {"pl_a": "conn_a", "pl_b": "conn_b"}


def timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def write_all(warehouse: Warehouse, identities: Iterable[Identity], run: str) -> None:
    """Write through `Warehouse.write` in batches of one pipeline (the stream holds
    each pipeline's identities together)."""
    claimed: set[str] = set()
    for pipeline, group in groupby(identities, key=lambda i: i.key.pipeline_id):
        if pipeline not in claimed:
            warehouse.claim(pipeline, run)
            claimed.add(pipeline)
        rows = (IdentityRow(i.key.source_id, i.source_updated_at, dict(i.values)) for i in group)
        while part := list(islice(rows, BATCH)):
            warehouse.write(WriteBatch(pipeline, CONNECTIONS[pipeline], run, part))


def changed(n: int, count: int, seed: int) -> list[Identity]:
    """`count` identities with a new email: half take another one's email (merges),
    half a fresh one (splits)."""
    rand = random.Random(seed)
    picked = set(rand.sample(range(n), count))
    chosen = [i for k, i in enumerate(synthetic_stream(n, seed, REALISTIC)) if k in picked]
    out = []
    for k, i in enumerate(chosen):
        other = rand.choice(chosen).values.get("email")
        email = other if k % 2 == 0 and other else f"fresh{k}@moved.io"
        out.append(Identity(i.key, i.connection_id, T0, {**i.values, "email": email}, i.profile_id))
    return sorted(out, key=lambda i: i.key)


def timing_statements(warehouse: Warehouse, log: list[tuple[float, str]]) -> None:
    """Record (seconds, statement) of every statement the warehouse runs from now on
    (`--statements`: where an incremental resolution spends its time)."""
    real = warehouse._execute  # type: ignore[attr-defined]

    def execute_timed(cur: Any) -> Callable[[str, dict[str, Any]], Any]:
        run = real(cur)

        def timed_run(query: str, params: dict[str, Any]) -> Any:
            start = time.perf_counter()
            try:
                return run(query, params)
            finally:
                log.append((time.perf_counter() - start, " ".join(query.split())))

        return timed_run

    warehouse._execute = execute_timed  # type: ignore[attr-defined]


def resolve(warehouse: Warehouse, run: str) -> tuple[float, float]:
    """Seconds, and the peak RSS (MB) of the process while resolving, as the run `run`
    resolves after its writes (`profiles.resolve_after_run`: under the run's id)."""
    reset_peak()
    took = timed(lambda: resolve_warehouse(warehouse, SETTINGS, Context(run, T0, ORDER)))
    return took, peak_mb()


def reset_peak() -> None:
    """Reset the process's peak RSS (Linux: ``clear_refs`` 5), so `peak_mb` covers
    only what follows."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def import_then_rebuild(
    open_fresh: Callable[[], Warehouse],
    reopen: Callable[[], Warehouse],
    n: int,
    seed: int,
    statements: list[tuple[float, str]] | None = None,
) -> dict[str, float]:
    """Import `n` identities, then rebuild, each with the close that makes its writes
    durable (DuckDB checkpoints its write-ahead log there: an import of a million
    leaves 2-5 s of it, which the rebuild's first statement would otherwise do for
    it); the rebuild runs in the warehouse opened again, as after a restart."""
    out: dict[str, float] = {}
    warehouse = open_fresh()
    with contextlib.ExitStack() as closing:
        closing.callback(warehouse.close)
        warehouse.ensure_columns(DEFAULT_MODEL.columns)
        reset_peak()
        identities = synthetic_stream(n, seed, REALISTIC)
        start = time.perf_counter()
        write_all(warehouse, identities, "import")
        out["import_rss"] = peak_mb()
        closing.pop_all()
        warehouse.close()
        out["import"] = time.perf_counter() - start
    warehouse = reopen()
    with contextlib.ExitStack() as closing:
        closing.callback(warehouse.close)
        if statements is not None:
            timing_statements(warehouse, statements)
        took, out["rss"] = resolve(warehouse, "import")
        closing.pop_all()
        out["close"] = timed(warehouse.close)
        out["rebuild"] = took + out["close"]
    return out


def bench_engine(
    name: str, open_fresh: Callable[[], Warehouse], reopen: Callable[[], Warehouse], args: Any
) -> None:
    n = args.identities
    with fewer_collections():
        small = import_then_rebuild(open_fresh, reopen, n // 4, args.seed)
        moves = changed(n, args.changes, args.seed)
        statements: list[tuple[float, str]] = []
        full = import_then_rebuild(
            open_fresh, reopen, n, args.seed, statements if args.statements else None
        )
        imported, rebuilt, import_rss, rebuild_rss = (
            full["import"],
            full["rebuild"],
            full["import_rss"],
            full["rss"],
        )
        rebuild_steps = list(statements)
        # The next run is another process: it opens the warehouse, writes its changes
        # and resolves them (its close is not counted: it checkpoints its writes too).
        warehouse = reopen()
        try:
            write_all(warehouse, moves, "changes")
            statements.clear()
            if args.statements:
                timing_statements(warehouse, statements)
            incremental, _ = resolve(warehouse, "changes")
            step = list(statements)  # counting the profiles below is not the step's
            profiles = warehouse.count_profiles()
        finally:
            warehouse.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{name}: {n:,} identities, {profiles:,} profiles")
    print(
        f"  import (yardstick)    {imported:8.2f} s   peak RSS {import_rss:.0f} MB   "
        "(its writes and the close that makes them durable)"
    )
    print(
        f"  rebuild               {rebuilt:8.2f} s   ratio {at_most(rebuilt / imported)}   "
        f"peak RSS {rebuild_rss:.0f} MB"
    )
    print(
        f"  growth n/4 -> n       {small['rebuild']:8.2f} s -> {rebuilt:.2f} s   "
        f"ratio {at_most(rebuilt / small['rebuild'], 2)}"
    )
    print(f"  close after rebuild   {full['close']:8.2f} s   (counted in the rebuild)")
    print(
        f"  incremental ({args.changes:,})   {incremental:8.3f} s   "
        f"share of rebuild {at_most(incremental / rebuilt, 4)}"
    )
    print(f"  peak RSS (process)    {rss:8.0f} MB")
    if rebuild_steps:
        print(
            f"  rebuild: {len(rebuild_steps)} statements, {sum(t for t, _ in rebuild_steps):.3f} s"
        )
        for took, query in rebuild_steps:
            if took >= 0.05:
                print(f"    {took * 1000:8.1f} ms  {query[:110]}")
    if step:
        print(f"  incremental: {len(step)} statements, {sum(t for t, _ in step):.3f} s")
        for took, query in step:
            print(f"    {took * 1000:8.1f} ms  {query[:110]}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identities", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engines", type=engine_list, default="duckdb,postgresql")
    parser.add_argument("--pg-url", default="postgresql://root@127.0.0.1:5432/test")
    parser.add_argument(
        "--statements", action="store_true", help="print each statement of the incremental step"
    )
    parser.add_argument(
        "--realistic",
        action="store_true",
        help="customers with the default model's other columns filled (~250 bytes a row)",
    )
    args = parser.parse_args()
    global REALISTIC
    REALISTIC = args.realistic
    engines = args.engines
    if "duckdb" in engines:
        with tempfile.TemporaryDirectory() as tmp:
            files: list[Path] = []

            def duck() -> Warehouse:
                files.append(Path(tmp) / f"w{len(files)}.duckdb")
                return connect(f"duckdb:///{files[-1]}")

            bench_engine("duckdb", duck, lambda: connect(f"duckdb:///{files[-1]}"), args)
    if "postgresql" in engines:
        schemas: list[str] = []

        def pg() -> Warehouse:
            schemas.append(f"bench_identity_{os.getpid()}_{len(schemas)}")
            return connect(args.pg_url, schema=schemas[-1])

        try:
            bench_engine("postgresql", pg, lambda: connect(args.pg_url, schema=schemas[-1]), args)
        finally:
            with psycopg.connect(args.pg_url, autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
