"""The workspace's warehouse: where it is, what it holds, moving it."""

from __future__ import annotations

import re
from typing import Any

from headwater.adapters.store import objects
from headwater.adapters.warehouse import check, connect
from headwater.services.app import App

_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]*@")


def safe_url(url: str) -> str:
    """The URL with any password masked, for display."""
    return _PASSWORD.sub(r"\1***@", url)


def describe(app: App) -> dict[str, Any]:
    url = app.warehouse_url()
    warehouse = connect(url)
    try:
        warehouse.ensure_columns(app.model().columns)
        return {
            "url": safe_url(url),
            "engine": warehouse.capabilities.engine,
            "identities": warehouse.count(),
            "profiles": warehouse.count_profiles(),
        }
    finally:
        warehouse.close()


def set_url(app: App, url: str) -> None:
    """Test the warehouse and create its tables, then save the setting."""
    check(url)
    warehouse = connect(url)
    try:
        warehouse.ensure_columns(app.model().columns)
    finally:
        warehouse.close()
    workspace = app.workspace()
    workspace.warehouse_url = url
    objects.save(app.engine, workspace, only=["warehouse_url"])
