"""A DuckDB rebuild of wide identities fits the memory it is given (no redo).

A transaction that runs out of DuckDB's memory bound is rolled back and redone with
twice the headroom: correct, but a rebuild paid twice, with twice the memory.  Real
customers (addresses, metadata) are wider than the identity bench's; at a million of
them the rebuild's values step ran out of the headroom sized per identity, and the
whole rebuild was redone (peak RSS 1.37 GB instead of ~0.5).  Here the same happens at
a tenth of the size, with the headrooms scaled down with it: the values step must take
what it needs from the rows' measured width, not run out.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from itertools import islice
from pathlib import Path

import pytest
from tests.identity.world import T0, settings_for

from headwater.adapters.warehouse import WriteBatch, duckdb, duckdb_memory
from headwater.adapters.warehouse.duckdb import DuckDBWarehouse
from headwater.kernel.model import Column, PropertyType
from headwater.kernel.records import IdentityRow
from headwater.services.identity import Context
from headwater.services.profiles import resolve_warehouse

S = PropertyType.STRING
COLUMNS = (
    Column("email", "email", S),
    Column("phone", "phone", S),
    Column("name", "name", S),
    Column("address.line1", "address_line1", S),
    Column("note", "note", S),
)
PIPELINES = {"pl_a": "conn_a", "pl_b": "conn_b"}
#: Identities per pipeline; the second shares an email with the first for 3 in 5.
HALF = 50_000
WIDE = 300  # characters of each of the three wide values


def rows(pipeline: str) -> Iterator[IdentityRow]:
    for i in range(HALF):
        n = i if pipeline == "pl_a" or i % 5 < 3 else HALF + i
        values = {
            "email": f"user{n}@shop.io",
            "phone": f"+1 555 {i:07d}" if i % 4 == 0 else None,
            "name": f"{pipeline} {i} " + "n" * WIDE,
            "address_line1": f"{i} " + "s" * WIDE,
            "note": "x" * WIDE,
        }
        yield IdentityRow(f"cus_{i:06d}", T0 + timedelta(seconds=i), values)


def test_a_rebuild_of_wide_identities_is_not_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Headrooms at half their defaults for a tenth of the identities of the case seen.
    monkeypatch.setattr(duckdb_memory, "REBUILD_HEADROOM_MB", 48)
    monkeypatch.setattr(duckdb, "RESOLUTION_HEADROOM_MB", 48)
    grown: list[int | None] = []
    grow = duckdb_memory.MemoryBound.grow

    def counted(self: duckdb_memory.MemoryBound, conn: object) -> bool:
        grown.append(self.headroom)
        return grow(self, conn)  # type: ignore[arg-type]

    monkeypatch.setattr(duckdb_memory.MemoryBound, "grow", counted)
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        wh.ensure_columns(COLUMNS)
        for pipeline, connection in PIPELINES.items():
            wh.claim(pipeline, "run_1")
            source = rows(pipeline)
            while part := list(islice(source, 5_000)):
                wh.write(WriteBatch(pipeline, connection, "run_1", part))
        assert not grown  # the writes fit
        outcome = resolve_warehouse(
            wh, settings_for("email", "phone"), Context("run_1", T0, tuple(PIPELINES))
        )
        assert grown == []  # the rebuild ran once
        shared = HALF * 3 // 5
        assert wh.count_profiles() == 2 * HALF - shared
        assert outcome.written == 2 * HALF - shared
        by_email = {p["email"]: p for p in wh.profiles()}
        merged, alone = by_email["user7@shop.io"], by_email[f"user{HALF + 9}@shop.io"]
        assert (merged["_identity_count"], alone["_identity_count"]) == (2, 1)
        # The same change time: pipeline order decides (pl_a first).
        assert merged["name"] == "pl_a 7 " + "n" * WIDE
        assert alone["name"] == "pl_b 9 " + "n" * WIDE
    finally:
        wh.close()
