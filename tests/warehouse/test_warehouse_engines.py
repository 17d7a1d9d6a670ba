"""connect() and check(): URL schemes, errors that name the problem and hide passwords."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from headwater.adapters.warehouse import WarehouseError, check, connect
from headwater.adapters.warehouse.duckdb import DuckDBWarehouse
from headwater.adapters.warehouse.engines import canonical_url
from headwater.adapters.warehouse.postgres import PostgresWarehouse
from headwater.kernel.errors import InvalidInput

from .conftest import PG_URL


def test_duckdb_file_url_creates_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "dir" / "w.duckdb"
    wh = connect(f"duckdb:///{target}")
    try:
        assert isinstance(wh, DuckDBWarehouse)
        assert wh.schema == "headwater"
        wh.ensure_columns(())
        assert wh.count() == 0
    finally:
        wh.close()
    assert target.exists()


def test_duckdb_url_with_schema(tmp_path: Path) -> None:
    wh = connect(f"duckdb:///{tmp_path / 'w.duckdb'}?schema=other")
    try:
        assert isinstance(wh, DuckDBWarehouse)
        assert wh.capabilities.engine == "duckdb"
        assert wh.schema == "other"
        wh.ensure_columns(())
        tables = wh._conn.execute(
            "SELECT DISTINCT table_schema FROM information_schema.tables "
            "WHERE table_name = 'identities'"
        ).fetchall()
        assert tables == [("other",)]
    finally:
        wh.close()


@pytest.mark.parametrize("url", ["mysql://u@h/db", "snowflake://acct", "just-a-path.duckdb"])
def test_unknown_scheme_names_it_and_the_supported_ones(url: str) -> None:
    with pytest.raises(InvalidInput) as info:
        connect(url)
    assert url.split(":")[0] in info.value.message
    assert "duckdb://" in info.value.message
    assert "postgresql://" in info.value.message


def test_malformed_duckdb_url() -> None:
    with pytest.raises(InvalidInput, match="duckdb:///"):
        connect("duckdb://")


def test_bad_schema_name_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="schema"):
        DuckDBWarehouse(":memory:", schema='x"; DROP TABLE y; --')


def test_unreachable_postgres_is_a_clear_error_without_the_password() -> None:
    url = "postgresql://alice:s3cr3t-pw@127.0.0.1:1/nowhere?connect_timeout=2"
    with pytest.raises(WarehouseError) as info:
        connect(url)
    message = info.value.message
    assert "127.0.0.1:1/nowhere" in message
    assert "s3cr3t-pw" not in message
    assert info.value.transient


def test_check_duckdb_creates_tables(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'c.duckdb'}"
    check(url)
    wh = connect(url)
    try:
        assert wh.identities() == []
        assert wh.profiles() == []
    finally:
        wh.close()


def test_check_refuses_an_unusable_duckdb_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(WarehouseError, match="DuckDB"):
        check(f"duckdb:///{blocker / 'w.duckdb'}")


@pytest.mark.postgres
def test_check_postgres_creates_schema_and_tables(pg_schema: str) -> None:
    url = PG_URL.replace("postgresql://", "postgres://")  # the short alias works too
    check(url, schema=pg_schema)
    wh = connect(url, schema=pg_schema)
    try:
        assert isinstance(wh, PostgresWarehouse)
        assert wh.capabilities.engine == "postgresql"
        assert wh.count() == 0
        assert wh.profiles() == []
    finally:
        wh.close()


@pytest.mark.postgres
def test_check_postgres_reports_a_missing_database() -> None:
    with pytest.raises(WarehouseError, match="no_such_db"):
        check("postgresql://root@127.0.0.1:5432/no_such_db_hw")


def test_a_memory_url_is_refused_because_it_keeps_nothing() -> None:
    """The audit: duckdb:///:memory: was accepted, lost everything and the position advanced."""
    for url in ("duckdb:///:memory:", "duckdb:///:memory:?schema=x"):
        with pytest.raises(InvalidInput, match="keeps nothing") as info:
            connect(url)
        assert "duckdb:////absolute/path/file.duckdb" in info.value.message
        with pytest.raises(InvalidInput, match="keeps nothing"):
            canonical_url(url)


def test_a_relative_duckdb_path_is_refused_when_opened(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=re.escape("'wh/x.duckdb' is relative")):
        connect("duckdb:///wh/x.duckdb")
    assert not (Path.cwd() / "wh" / "x.duckdb").exists()


def test_canonical_url_resolves_a_relative_duckdb_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert canonical_url("duckdb:///wh/x.duckdb") == f"duckdb:///{tmp_path}/wh/x.duckdb"
    assert canonical_url("duckdb:///wh/x.duckdb?schema=s") == (
        f"duckdb:///{tmp_path}/wh/x.duckdb?schema=s"
    )
    absolute = f"duckdb:///{tmp_path}/a.duckdb"
    assert absolute.startswith("duckdb:////")
    assert canonical_url(absolute) == absolute
    assert canonical_url(PG_URL) == PG_URL
