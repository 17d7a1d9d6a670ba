"""The workspace's warehouse setting: DuckDB paths saved absolute, `:memory:` refused,
the URL's password encrypted at rest and masked wherever it is shown."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import PG_URL

from headwater.adapters.store import tables
from headwater.adapters.warehouse import WriteBatch
from headwater.kernel.errors import InvalidInput, TransientError
from headwater.kernel.records import IdentityRow
from headwater.services.app import App
from headwater.services.warehouse import describe, set_url


def test_a_relative_duckdb_url_is_saved_absolute_so_every_directory_sees_one_warehouse(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit: duckdb:///wh/x.duckdb meant one warehouse per working directory."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    set_url(app, "duckdb:///wh/x.duckdb")
    assert app.warehouse_url() == f"duckdb:///{first}/wh/x.duckdb"
    wh = app.warehouse()
    try:
        wh.claim("pl_x", "run_x")
        wh.write(WriteBatch("pl_x", "conn_x", "run_x", [IdentityRow("cus_1", None, {})]))
    finally:
        wh.close()
    monkeypatch.chdir(second)
    assert describe(app)["identities"] == 1
    assert not (second / "wh").exists()


def test_a_memory_warehouse_is_refused_and_the_setting_kept(app: App) -> None:
    before = app.warehouse_url()
    with pytest.raises(InvalidInput, match="keeps nothing"):
        set_url(app, "duckdb:///:memory:")
    assert app.warehouse_url() == before


def test_the_default_warehouse_url_is_absolute(app: App) -> None:
    assert app.warehouse_url().startswith("duckdb:////")


@pytest.mark.postgres
def test_the_warehouse_password_is_encrypted_at_rest_and_masked(app: App, pg_schema: str) -> None:
    # Trust authentication ignores the password, so a real one can be set and used.
    url = PG_URL.replace("root@", "root:Sup3r-s3cret@") + f"?schema={pg_schema}"
    set_url(app, url)
    with app.engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(sa.select(tables.workspaces))]
    assert stored
    assert "Sup3r-s3cret" not in repr(stored)
    assert app.warehouse_url() == url  # decrypted for use
    shown = describe(app)["url"]
    assert "Sup3r-s3cret" not in shown
    assert shown == url.replace("Sup3r-s3cret", "***")
    # libpq's other spelling of a password, as a query parameter.
    set_url(app, f"{PG_URL}?password=Sup3r-s3cret&schema={pg_schema}")
    assert "Sup3r-s3cret" not in describe(app)["url"]
    with app.engine.connect() as conn:
        assert "Sup3r-s3cret" not in repr(list(conn.execute(sa.select(tables.workspaces))))


def test_a_wrong_password_is_never_shown_in_errors(app: App) -> None:
    url = "postgresql://root:Sup3r-s3cret@127.0.0.1:1/test?connect_timeout=2"
    with pytest.raises(TransientError) as info:
        set_url(app, url)
    assert "Sup3r-s3cret" not in info.value.message
    assert "127.0.0.1:1" in info.value.message


def test_other_spellings_of_a_password_are_masked_too(app: App, pg_schema: str) -> None:
    # libpq's sslpassword (the client key's passphrase) was shown whole by describe.
    set_url(app, f"{PG_URL}?sslpassword=Sup3r-s3cret&schema={pg_schema}")
    assert "Sup3r-s3cret" not in describe(app)["url"]
    # A password holding an unencoded '@' or '/': libpq took its tail for the host or
    # port, and its errors repeated that as such.
    for unencoded in ("Sup3r@s3cret", "Sup3r/s3cret"):
        with pytest.raises(InvalidInput) as refused:
            set_url(app, f"postgresql://root:{unencoded}@127.0.0.1:1/test?connect_timeout=2")
        assert refused.value.location == "url"
        assert "s3cret" not in refused.value.message
