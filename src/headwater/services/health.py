"""Readiness: whether the store and `app`'s workspace's warehouse can be reached.

The embedded DuckDB file is not opened for this (another process may be reading it,
and only runs open it: DESIGN.md §7): its folder must be writable, or creatable (a
workspace's own file, ``warehouses/<id>.duckdb``, is made with its folder by its first
run).
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
            existing = next((p for p in (folder, *folder.parents) if p.exists()), folder)
            if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
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
