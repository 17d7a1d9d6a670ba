"""Warehouse write throughput against a plain bulk insert, measured in the same run.

Writes N synthetic customers (Default Customer Model, 14 columns) in batches of 5,000
(the run engine's WRITE_BATCH) through each adapter: first as inserts, then the same
rows again (a full re-run: identities updated), then with every email changed.  Writes
never touch profiles (identity resolution does, after the write).  Compares with a
yardstick measured in the same run: DuckDB inserting the same Arrow data without merge,
PostgreSQL COPYing the same rows into an unlogged table.
Usage: python bench/warehouse.py [N] [--batch B] [--pg URL] [--skip-pg] [--skip-duckdb]
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa

from headwater.adapters.warehouse import Warehouse, WriteBatch, connect
from headwater.adapters.warehouse.staging import column_values
from headwater.kernel.model import DEFAULT_MODEL
from headwater.kernel.records import IdentityRow

BATCH = 5_000
COLUMNS = DEFAULT_MODEL.columns


def synthetic(n: int, tag: str = "") -> list[list[IdentityRow]]:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        when = base + timedelta(seconds=i)
        values = {
            "email": f"user{i}{tag}@example.com",
            "first_name": f"First{i % 977}",
            "last_name": f"Last{i % 991}",
            "phone": f"+1555{i:07d}",
            "address_line1": f"{i % 500} Main Street",
            "address_line2": None if i % 3 else f"Apt {i % 40}",
            "address_city": ["London", "Rome", "Paris", "Berlin"][i % 4],
            "address_postal_code": f"{10000 + i % 89999}",
            "address_state": None,
            "address_country": ["GB", "IT", "FR", "DE"][i % 4],
            "currency": "eur",
            "created_at": when,
            "metadata": {"plan": ["free", "pro"][i % 2], "seats": i % 10},
        }
        rows.append(IdentityRow(f"cus_{i:014d}", when, values))
    return [rows[i : i + BATCH] for i in range(0, n, BATCH)]


def timed(label: str, n: int, work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    rate = n / (time.perf_counter() - start)
    print(f"  {label:<38} {rate:>10,.0f} rows/s  ({1000 * BATCH / rate:6.1f} ms/batch)")
    return rate


def through_adapter(
    wh: Warehouse, batches: list[list[IdentityRow]], run: str
) -> Callable[[], None]:
    def work() -> None:
        wh.claim("bench", run)
        for rows in batches:
            wh.write(WriteBatch("bench", "conn", run, rows))

    return work


def duckdb_yardstick(path: Path, batches: list[list[IdentityRow]]) -> Callable[[], None]:
    conn = duckdb.connect(str(path))
    conn.execute(
        "CREATE TABLE plain (_source_id VARCHAR, _source_updated_at TIMESTAMPTZ, "
        + ", ".join(
            f'"{c.name}" {"TIMESTAMPTZ" if c.name == "created_at" else "VARCHAR"}' for c in COLUMNS
        )
        + ")"
    )

    def work() -> None:
        for rows in batches:
            data = {
                "_source_id": pa.array([r.source_id for r in rows], pa.string()),
                "_source_updated_at": pa.array(
                    [r.source_updated_at for r in rows], pa.timestamp("us", tz="UTC")
                ),
            }
            for c in COLUMNS:
                data[c.name] = pa.array(column_values(rows, c.name, c.type))
            conn.register("stage", pa.table(data))
            conn.execute("BEGIN")
            conn.execute("INSERT INTO plain SELECT * FROM stage").fetchall()
            conn.execute("COMMIT")
            conn.unregister("stage")
        conn.close()

    return work


def pg_yardstick(url: str, schema: str, batches: list[list[IdentityRow]]) -> Callable[[], None]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(
        f'CREATE UNLOGGED TABLE "{schema}".plain (_source_id text, _source_updated_at '
        "timestamptz, "
        + ", ".join(
            f'"{c.name}" {"timestamptz" if c.name == "created_at" else "text"}' for c in COLUMNS
        )
        + ")"
    )
    types = [
        "text",
        "timestamptz",
        *("timestamptz" if c.name == "created_at" else "text" for c in COLUMNS),
    ]

    def work() -> None:
        for rows in batches:
            data = [[r.source_id for r in rows], [r.source_updated_at for r in rows]]
            data += [column_values(rows, c.name, c.type) for c in COLUMNS]
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(f'COPY "{schema}".plain FROM STDIN (FORMAT BINARY)') as copy,
            ):
                copy.set_types(types)
                for record in zip(*data, strict=True):
                    copy.write_row(record)
        conn.close()

    return work


def bench_engine(
    name: str,
    wh: Warehouse,
    yardstick: Callable[[], None],
    n: int,
    batches: list[list[IdentityRow]],
) -> None:
    print(f"{name}: {n:,} rows, batches of {BATCH}")
    wh.ensure_columns(COLUMNS)
    changed = synthetic(n, tag="+v2")
    base = timed("yardstick (plain bulk insert)", n, yardstick)
    ins = timed("adapter write, all new", n, through_adapter(wh, batches, "r1"))
    same = timed("adapter write, existing, unchanged", n, through_adapter(wh, batches, "r2"))
    upd = timed("adapter write, existing, email changed", n, through_adapter(wh, changed, "r3"))
    assert wh.count() == n
    assert wh.count_profiles() == 0  # writes never touch profiles: resolution does
    print(
        f"  ratio vs yardstick: new {ins / base:.2f}  unchanged {same / base:.2f}  "
        f"changed {upd / base:.2f}"
    )
    print(
        f"  vs targets (60k new, 40k updates): new {ins / 60_000:.2f}  "
        f"unchanged {same / 40_000:.2f}  changed {upd / 40_000:.2f}"
    )


def bench_duckdb(n: int, batches: list[list[IdentityRow]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wh = connect(f"duckdb:///{Path(tmp) / 'bench.duckdb'}")
        try:
            yardstick = duckdb_yardstick(Path(tmp) / "plain.duckdb", batches)
            bench_engine("duckdb", wh, yardstick, n, batches)
        finally:
            wh.close()


def bench_postgres(url: str, n: int, batches: list[list[IdentityRow]]) -> None:
    schema = f"bench_{secrets.token_hex(4)}"
    wh = connect(url, schema=schema)
    try:
        wh.ensure_columns(())
        bench_engine("postgresql", wh, pg_yardstick(url, schema, batches), n, batches)
    finally:
        wh.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    global BATCH
    parser = argparse.ArgumentParser()
    parser.add_argument("n", nargs="?", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--pg", default="postgresql://root@127.0.0.1:5432/test")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-duckdb", action="store_true")
    args = parser.parse_args()
    BATCH = args.batch
    batches = synthetic(args.n)
    if not args.skip_duckdb:
        bench_duckdb(args.n, batches)
    if not args.skip_pg:
        bench_postgres(args.pg, args.n, batches)


if __name__ == "__main__":
    main()
