"""Open a warehouse from its URL, and check that a URL is usable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from headwater.adapters.warehouse.contract import Warehouse, WarehouseError
from headwater.adapters.warehouse.staging import hide_password
from headwater.kernel.errors import InvalidInput

DEFAULT_SCHEMA = "headwater"


_DUCKDB = "duckdb:///"
_DUCKDB_FORM = "duckdb:////absolute/path/file.duckdb"


def _duckdb_path(url: str) -> str:
    """The file of a DuckDB URL (without its query); refuses what would lose data."""
    path = url.removeprefix(_DUCKDB).partition("?")[0]
    if not url.startswith(_DUCKDB) or not path:
        raise InvalidInput(f"a DuckDB URL is {_DUCKDB_FORM}", "url")
    if path == ":memory:":
        raise InvalidInput(
            "an in-memory DuckDB warehouse keeps nothing once the command ends (while the "
            f"pipelines' positions would move on); use a file: {_DUCKDB_FORM}",
            "url",
        )
    return path


def _duckdb(url: str, schema: str) -> Warehouse:
    from headwater.adapters.warehouse.duckdb import DuckDBWarehouse

    path = _duckdb_path(url)
    if not Path(path).is_absolute():
        # Relative to what?  Each command's working directory would be its own warehouse.
        raise InvalidInput(
            f"the DuckDB path {path!r} is relative; a DuckDB URL names an absolute path "
            f"({_DUCKDB_FORM}): set it again with `headwater warehouse set`",
            "url",
        )
    return DuckDBWarehouse(path, schema=schema)


def canonical_url(url: str) -> str:
    """`url` as it is saved: a DuckDB path resolved against the working directory now
    (so every later command, wherever it runs, opens the same file); other URLs as given.

    Raises `InvalidInput` for ``duckdb:///:memory:`` and malformed DuckDB URLs.
    """
    if not url.lower().startswith("duckdb:"):
        return url
    path = _duckdb_path(url)
    query = url.partition("?")[2]
    absolute = str(Path(path).expanduser().absolute())
    return _DUCKDB + absolute + (f"?{query}" if query else "")


def _postgres(url: str, schema: str) -> Warehouse:
    from headwater.adapters.warehouse.postgres import PostgresWarehouse

    # libpq ends the user and password at the first '@' or '/': the rest of a password
    # holding one is read as the host or port, and repeated as such in its errors.
    login, at, _ = url.partition("://")[2].partition("?")[0].rpartition("@")
    if at and ":" in login and ("@" in login or "/" in login):
        raise InvalidInput(
            "the user or password holds '@' or '/': percent-encode them (%40, %2F)", "url"
        )
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    return PostgresWarehouse(url, schema=schema)


#: URL scheme -> opener.  A new engine registers here.
ENGINES: dict[str, Callable[[str, str], Warehouse]] = {
    "duckdb": _duckdb,
    "postgresql": _postgres,
    "postgres": _postgres,
}


def refuses_nul(url: str) -> bool:
    """Whether the engine at `url` cannot store the NUL character in text (its adapter's
    ``nul_forbidden``: a row holding one is refused at write, per record), known from
    the URL alone, without connecting."""
    if ENGINES.get(url.partition(":")[0].lower()) is _postgres:
        from headwater.adapters.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse.nul_forbidden
    return False


def split_schema(url: str) -> tuple[str, str | None]:
    """Take a ``schema=NAME`` query parameter out of `url`; the rest goes to the driver."""
    # Not urlsplit/urlunsplit: they turn duckdb:////abs/path into duckdb://abs/path.
    base, _, query_text = url.partition("?")
    query = parse_qsl(query_text, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    if schema is None:
        return url, None
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return base + (f"?{rest}" if rest else ""), schema


def connect(url: str, *, schema: str | None = None) -> Warehouse:
    """Open the warehouse at `url` (``duckdb:////absolute/file.duckdb``,
    ``postgresql://user@host:port/db``); tables are created by `ensure_columns`.
    A ``?schema=NAME`` parameter in the URL picks the schema (default ``headwater``).

    Raises `InvalidInput` for an unsupported or malformed URL and `WarehouseError`
    when the warehouse cannot be reached.
    """
    url, url_schema = split_schema(url)
    schema = schema or url_schema
    scheme, sep, _ = url.partition(":")
    opener = ENGINES.get(scheme.lower()) if sep else None
    if opener is None:
        shown = scheme if sep else hide_password(url)[:40]
        raise InvalidInput(
            f"unsupported warehouse URL scheme {shown!r}; supported: "
            + ", ".join(f"{name}://" for name in ENGINES),
            "url",
        )
    return opener(url, schema or DEFAULT_SCHEMA)


def check(url: str, *, schema: str | None = None) -> None:
    """Connect, create the schema and tables if missing, and close.

    Raises `InvalidInput` or `WarehouseError` with a message that says what is wrong
    (never the password), so ``warehouse set URL`` can refuse a bad URL up front.
    """
    warehouse = connect(url, schema=schema)
    try:
        warehouse.ensure_columns(())
        warehouse.count()
    except WarehouseError as exc:
        raise WarehouseError(f"the warehouse is not usable: {exc.message}") from None
    finally:
        warehouse.close()
