"""Open a warehouse from its URL, and check that a URL is usable."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from headwater.adapters.warehouse.contract import Warehouse, WarehouseError
from headwater.adapters.warehouse.staging import hide_password
from headwater.kernel.errors import InvalidInput

DEFAULT_SCHEMA = "headwater"


def _duckdb(url: str, schema: str) -> Warehouse:
    from headwater.adapters.warehouse.duckdb import DuckDBWarehouse

    path = url.removeprefix("duckdb:///")
    if path == url or not path:
        raise InvalidInput(
            "a DuckDB URL is duckdb:///path/to/file.duckdb or duckdb:///:memory:", "url"
        )
    return DuckDBWarehouse(path, schema=schema)


def _postgres(url: str, schema: str) -> Warehouse:
    from headwater.adapters.warehouse.postgres import PostgresWarehouse

    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    return PostgresWarehouse(url, schema=schema)


#: URL scheme -> opener.  A new engine registers here.
ENGINES: dict[str, Callable[[str, str], Warehouse]] = {
    "duckdb": _duckdb,
    "postgresql": _postgres,
    "postgres": _postgres,
}


def split_schema(url: str) -> tuple[str, str | None]:
    """Take a ``schema=NAME`` query parameter out of `url`; the rest goes to the driver."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    if schema is None:
        return url, None
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def connect(url: str, *, schema: str | None = None) -> Warehouse:
    """Open the warehouse at `url` (``duckdb:///file``, ``duckdb:///:memory:``,
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
