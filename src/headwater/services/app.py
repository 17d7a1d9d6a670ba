"""The application context every entry point opens: settings, store, cipher, workspace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import Engine

from headwater.adapters.store import objects
from headwater.adapters.store.crypto import Cipher, warehouse_url_context
from headwater.adapters.store.database import open_engine
from headwater.adapters.warehouse import connect as connect_warehouse
from headwater.adapters.warehouse.contract import Warehouse
from headwater.adapters.warehouse.engines import canonical_url
from headwater.kernel.entities import Workspace, utcnow
from headwater.kernel.model import DEFAULT_MODEL, CustomerModel
from headwater.kernel.settings import Settings
from headwater.services.text import known_id

DEFAULT_WORKSPACE = "default"
DEFAULT_WORKSPACE_ID = "ws_default"


@dataclass
class App:
    """One workspace's view of the product. Every service call acts on `workspace_id`;
    `in_workspace` gives another workspace's view over the same store (the API and the
    service choose it per request and per run)."""

    settings: Settings
    engine: Engine
    cipher: Cipher
    workspace_id: str = DEFAULT_WORKSPACE_ID

    @classmethod
    def open(cls, settings: Settings) -> App:
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        cipher = Cipher.from_settings(settings.secret_key, settings.home)
        engine = open_engine(settings.database_url, cipher)
        app = cls(settings, engine, cipher)
        app.workspace()  # the default workspace exists from the first start
        return app

    def close(self) -> None:
        self.engine.dispose()

    def in_workspace(self, workspace_id: str) -> App:
        """The same store seen from another workspace (NotFound if it does not exist)."""
        objects.get(self.engine, Workspace, known_id(workspace_id, "workspace"))
        return replace(self, workspace_id=workspace_id)

    def workspace(self) -> Workspace:
        if self.workspace_id != DEFAULT_WORKSPACE_ID:
            return objects.get(self.engine, Workspace, self.workspace_id)
        found = objects.find(self.engine, Workspace, id=DEFAULT_WORKSPACE_ID)
        if found:
            return found[0]
        workspace = Workspace(
            id=DEFAULT_WORKSPACE_ID,
            name=DEFAULT_WORKSPACE,
            customer_model=DEFAULT_MODEL.as_list(),
            warehouse_url_encrypted=None,
            created_at=utcnow(),
        )
        return objects.add_or_get(self.engine, workspace)  # several processes start

    def model(self) -> CustomerModel:
        return CustomerModel.from_list(self.workspace().customer_model)

    def warehouse_url(self) -> str:
        """The workspace's warehouse URL, decrypted: for connecting, never for display
        (`headwater.services.warehouse.safe_url` masks it)."""
        workspace = self.workspace()
        if workspace.warehouse_url_encrypted is None:
            return canonical_url(self.default_warehouse_url())
        context = warehouse_url_context(workspace.id)
        return self.cipher.decrypt(workspace.warehouse_url_encrypted, context=context)

    def default_warehouse_url(self) -> str:
        """Where the workspace's customers land until it is given a warehouse: the
        default workspace uses the data directory's DuckDB file, every other workspace a
        DuckDB file of its own (``warehouses/<id>.duckdb``), so that two workspaces never
        share a table."""
        if self.workspace_id == DEFAULT_WORKSPACE_ID:
            return self.settings.default_warehouse_url
        return f"duckdb:///{self.settings.home / 'warehouses' / f'{self.workspace_id}.duckdb'}"

    def warehouse(self, opened: Callable[[Warehouse], object] | None = None) -> Warehouse:
        """Open the workspace's warehouse with its tables matching the Customer Model
        (one that says whose it is not yet, e.g. made by an earlier version, becomes this
        workspace's: `Warehouse.bind_workspace`).  `opened` is called with it once it
        is connected, before its tables are looked at (a run: so that a stop can
        interrupt a wait on them)."""
        warehouse = connect_warehouse(self.warehouse_url())
        try:
            if opened is not None:
                opened(warehouse)
            warehouse.ensure_columns(self.model().columns)
            warehouse.bind_workspace(self.workspace_id)
        except BaseException:
            warehouse.close()
            raise
        return warehouse
