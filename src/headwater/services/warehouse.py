"""The workspace's warehouse: where it is, what it holds, moving it."""

from __future__ import annotations

from typing import Any

from headwater.adapters.store import objects
from headwater.adapters.store.crypto import warehouse_url_context
from headwater.adapters.warehouse import check, connect
from headwater.adapters.warehouse.engines import canonical_url
from headwater.adapters.warehouse.staging import hide_password
from headwater.services.app import App


def safe_url(url: str) -> str:
    """The URL with any password masked, for display."""
    return hide_password(url)


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
    """Test the warehouse and create its tables, then save the setting.

    A DuckDB path is saved absolute (resolved against the working directory now) and
    ``duckdb:///:memory:`` is refused (`InvalidInput`).  A pipeline's position lives in
    its warehouse, so after a switch each pipeline's next run is a full one.
    """
    url = canonical_url(url)
    check(url)
    warehouse = connect(url)
    try:
        warehouse.ensure_columns(app.model().columns)
    finally:
        warehouse.close()
    save_url(app, url)


def save_url(app: App, url: str) -> None:
    """Save `url` as the workspace's warehouse, encrypted (it may carry a password),
    without testing it: `set_url` is what entry points call."""
    workspace = app.workspace()
    context = warehouse_url_context(workspace.id)
    workspace.warehouse_url_encrypted = app.cipher.encrypt(canonical_url(url), context=context)
    objects.save(app.engine, workspace, only=["warehouse_url_encrypted"])


def identity_counts(app: App, pipeline_ids: list[str]) -> dict[str, int]:
    """How many identities each of the workspace's `pipeline_ids` holds in the warehouse."""
    warehouse = app.warehouse()
    try:
        return {pipeline_id: warehouse.count(pipeline_id) for pipeline_id in pipeline_ids}
    finally:
        warehouse.close()
