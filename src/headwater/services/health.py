"""Readiness: whether the store and the default workspace's warehouse can be reached.

The embedded DuckDB file is not opened for this (another process may be reading it,
and only runs open it: DESIGN.md §7): its folder must exist and be writable.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from headwater.adapters.store.database import describe_error
from headwater.adapters.warehouse import connect
from headwater.services.app import App


def readiness(app: App) -> dict[str, str]:
    """``{"store": ..., "warehouse": ...}``, each ``"ok"`` or what is wrong."""
    return {"store": _store(app), "warehouse": _warehouse(app)}


def _store(app: App) -> str:
    try:
        with app.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"unreachable: {describe_error(exc)}"
    return "ok"


def _warehouse(app: App) -> str:
    try:
        url = app.warehouse_url()
        if url.startswith("duckdb:"):
            folder = Path(url.removeprefix("duckdb:///")).parent
            if not os.access(folder, os.W_OK):
                return f"the DuckDB file's folder {folder} is missing or not writable"
            return "ok"
        warehouse = connect(url)
        try:
            warehouse.count()
        finally:
            warehouse.close()
    except Exception as exc:
        return f"unreachable: {describe_error(exc)}"
    return "ok"
