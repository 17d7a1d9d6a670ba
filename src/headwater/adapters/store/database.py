"""The metadata store: SQLite by default, PostgreSQL in production, migrated on open."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import (
    ArgumentError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    StatementError,
)

from headwater.adapters.store.crypto import Cipher
from headwater.kernel.errors import InvalidInput, TransientError, redact

#: The newest migration.  When the store is at it, opening skips Alembic altogether
#: (importing it costs ~12 MB and ~80 ms); a test checks this against Alembic's head.
HEAD_REVISION = "0017_webhook_refusals"


#: How long a SQLite statement waits for another connection's lock before failing.
SQLITE_BUSY_TIMEOUT_MS = 10_000


class StoreUnavailable(TransientError):
    """The metadata database could not be reached."""


def engine_url(url: str) -> str:
    """Map user-facing URLs to SQLAlchemy driver URLs (psycopg 3 for PostgreSQL)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def describe_error(exc: BaseException) -> str:
    """One line for any exception, safe to show: for SQLAlchemy's errors only the
    driver's own message, never the SQL statement or its parameters (which can hold
    customer data)."""
    if isinstance(exc, StatementError):
        cause: BaseException = exc.orig if exc.orig is not None else exc
        text = str(exc.orig) if exc.orig is not None else str(exc.args[0] if exc.args else "")
        first = (text.strip().splitlines() or [""])[0]
        return redact(f"{type(cause).__name__}: {first}")
    return redact(f"{type(exc).__name__}: {exc}")


def store_error(exc: BaseException) -> StoreUnavailable | None:
    """The store's driver failing for want of the store (a SQLite file locked past the
    busy timeout, its disk full, a server connection dropped or refused) as
    `StoreUnavailable`, naming the store; None for any other error."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return None
    message = f"the metadata store failed: {describe_error(exc)}"
    if "database is locked" in message:
        message += (
            f" (another process held its write lock for more than "
            f"{SQLITE_BUSY_TIMEOUT_MS // 1000} s: a long-running command or a tool with the "
            "file open; try again when it is done)"
        )
    return StoreUnavailable(message)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def open_engine(url: str, cipher: Cipher | None = None) -> Engine:
    """Create the engine and bring the schema to the newest migration.

    `cipher` is the store's key: migrations that encrypt stored secrets need it.
    """
    given, url = url, engine_url(url)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = _create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        connection = engine.connect()
    except Exception as exc:  # the driver's own error types vary; report uniformly
        engine.dispose()
        raise StoreUnavailable(_unreachable(engine, given, exc)) from exc
    try:
        with connection as conn:
            if current_revision(conn) != HEAD_REVISION:
                conn.commit()  # the read's transaction ends before the pragmas
                with _foreign_keys_off(conn), conn.begin():
                    if _one_migrator(conn) != HEAD_REVISION:
                        migrate(conn, cipher=cipher)
                        _check_foreign_keys(conn)
    except Exception as exc:  # the driver's own error types vary; report uniformly
        engine.dispose()
        raise StoreUnavailable(
            f"metadata store {engine.url!r} is unavailable: {describe_error(exc)}"
        ) from exc
    return engine


_URL_VARIABLE = "HEADWATER_DATABASE_URL"
_URL_FORMS = (
    "use postgresql://USER:PASSWORD@HOST/DATABASE, or unset it for the SQLite file "
    "in HEADWATER_HOME"
)


def _unreachable(engine: Engine, given: str, exc: BaseException) -> str:
    """Why the store could not be connected to.  A server's URL can only have come from
    the variable (the default is a SQLite file): it is named, with the host to check and
    the URL as given, its password masked."""
    if engine.dialect.name == "sqlite":
        return f"metadata store {engine.url!r} is unavailable: {describe_error(exc)}"
    where = f"host {engine.url.host}" if engine.url.host else "the local socket"
    if engine.url.port is not None:
        where += f" port {engine.url.port}"
    shown = make_url(given).render_as_string(hide_password=True)
    return (
        f"{_URL_VARIABLE}: the metadata store is unavailable: cannot connect to {where} "
        f"({shown!r}): {describe_error(exc)}"
    )


def _create_engine(url: str) -> Engine:
    """The engine for `url`; `InvalidInput` naming the variable when the URL cannot be
    used (malformed, an unknown database, a driver that is not installed)."""
    try:
        # Parameters can hold customer data: never in an error message.
        # A server connection can drop while pooled (pre-ping finds out); a SQLite file
        # cannot, and the ping would double the cost of every short read.
        return create_engine(
            url,
            pool_pre_ping=not url.startswith("sqlite"),
            hide_parameters=True,
            json_deserializer=orjson.loads,
        )
    except (ArgumentError, ImportError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        try:
            shown = make_url(url).render_as_string(hide_password=True)
        except (ArgumentError, ValueError):
            message = f"not a database URL ({reason}); {_URL_FORMS}"
        else:
            if isinstance(exc, NoSuchModuleError):
                reason = f"unknown database ({reason})"
            elif isinstance(exc, ImportError):
                reason = f"its driver is not installed ({reason})"
            message = f"cannot use {shown!r} for the metadata store: {reason}; {_URL_FORMS}"
        raise InvalidInput(message, _URL_VARIABLE) from None


@contextlib.contextmanager
def _foreign_keys_off(conn: Connection) -> Iterator[None]:
    """SQLite: foreign keys off while migrating (outside any transaction, where the
    pragma is a no-op): a migration that recreates a parent table (batch mode: copy,
    drop, rename) would otherwise fail on the drop.  `_check_foreign_keys` checks the
    result before it commits."""
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
    conn.commit()
    try:
        yield
    finally:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.commit()


def _check_foreign_keys(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"the migration broke {len(broken)} foreign keys: {broken[:3]}")


def _one_migrator(conn: Connection) -> str | None:
    """Wait until no other process migrates this store, then read its revision again
    (in the migration's transaction, which holds the wait's lock until it commits).

    Processes sharing a PostgreSQL store (several `serve`s started at once, or
    restarted on an upgrade) each found it behind and migrated it together: the
    second one's CREATE TABLE collided with the first's and it failed to start.  An
    advisory lock of the transaction, keyed by the store's schema, makes them take
    turns: the first migrates, the others find it migrated.  On SQLite the same
    happened (pysqlite begins no transaction before DDL, so each CREATE TABLE committed
    alone and the others' collided: "table workspaces already exists"): the migration
    begins with the file's write lock (`BEGIN IMMEDIATE`, waiting up to the busy
    timeout), so it is one transaction the others wait for."""
    if conn.dialect.name == "postgresql":
        key = "hashtext('headwater migrate ' || coalesce(current_schema(), ''))"
        conn.execute(text(f"SELECT pg_advisory_xact_lock({key})"))
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    return current_revision(conn)


def current_revision(conn: Connection) -> str | None:
    """The store's migration revision, or None for a new store."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if found is None else str(found)


def migrate(conn: Connection, revision: str = "head", cipher: Cipher | None = None) -> None:
    from alembic import command  # only when there is something to migrate
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("headwater.adapters.store") / "migrations"))
    config.attributes["connection"] = conn
    config.attributes["cipher"] = cipher
    command.upgrade(config, revision)


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    with engine.begin() as conn:
        yield conn
