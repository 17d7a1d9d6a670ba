"""The workspace's warehouse: where it is, what it holds, moving it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from headwater.adapters.store import objects
from headwater.adapters.store.crypto import warehouse_url_context
from headwater.adapters.warehouse import check, connect
from headwater.adapters.warehouse.contract import ModelChange
from headwater.adapters.warehouse.engines import canonical_url
from headwater.adapters.warehouse.staging import hide_password
from headwater.kernel.errors import InvalidInput
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


def set_url(app: App, url: str, *, confined: bool = False) -> None:
    """Test the warehouse and create its tables, then save the setting.

    A DuckDB path is saved absolute (resolved against the working directory now) and
    ``duckdb:///:memory:`` is refused (`InvalidInput`).  A pipeline's position lives in
    its warehouse, so after a switch each pipeline's next run is a full one.

    ``confined=True`` is for callers who do not own the server (the API): a DuckDB file
    must then be the workspace's own, in its folder of the data directory
    (`confined_folder`), so that no workspace can open another's file or any other file
    the server can write, and a warehouse that holds another workspace's customers
    (`Warehouse.bind_workspace`: whatever URL reaches it) is refused.  Otherwise (the
    CLI, the server's owner) the warehouse becomes this workspace's.
    """
    url = canonical_url(url)
    if confined:
        _check_confined(app, url)
    check(url)
    warehouse = connect(url)
    try:
        # The workspace's model is the current one there, even if a rename or drop made
        # there earlier replaced the same model (made again meanwhile on another
        # warehouse): else it stayed outdated there (`model_state`), refusing every run.
        columns = app.model().columns
        warehouse.change_model(ModelChange(columns, columns))
        other = warehouse.bind_workspace(app.workspace_id, take=not confined)
    finally:
        warehouse.close()
    if other is not None:
        raise InvalidInput(
            "this warehouse holds another workspace's customers; give this workspace a "
            "database or a schema of its own (e.g. ?schema=NAME)",
            "url",
        )
    save_url(app, url)


def confined_folder(app: App) -> Path:
    """Where a workspace's DuckDB warehouses may live when set over the API."""
    return app.settings.home / "warehouses" / app.workspace_id


def _check_confined(app: App, url: str) -> None:
    if not url.lower().startswith("duckdb:"):
        return
    own = canonical_url(app.default_warehouse_url())
    path = Path(url.removeprefix("duckdb:///").partition("?")[0])
    folder = confined_folder(app)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = folder.resolve()
    inside = path.resolve().parent == folder and path.suffix == ".duckdb"
    if url.partition("?")[0] != own.partition("?")[0] and not inside:
        raise InvalidInput(
            f"a DuckDB warehouse of this workspace is a .duckdb file in {folder} "
            f"(duckdb:///{folder}/NAME.duckdb) or its default, {safe_url(own)}",
            "url",
        )


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
