"""The application context every entry point opens: settings, store, cipher, workspace."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from headwater.adapters.store import objects
from headwater.adapters.store.crypto import Cipher
from headwater.adapters.store.database import open_engine
from headwater.adapters.warehouse import connect as connect_warehouse
from headwater.adapters.warehouse.contract import Warehouse
from headwater.kernel.entities import Workspace, utcnow
from headwater.kernel.model import DEFAULT_MODEL, CustomerModel
from headwater.kernel.settings import Settings

DEFAULT_WORKSPACE = "default"


@dataclass
class App:
    settings: Settings
    engine: Engine
    cipher: Cipher

    @classmethod
    def open(cls, settings: Settings) -> App:
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = open_engine(settings.database_url)
        app = cls(settings, engine, Cipher.from_settings(settings.secret_key, settings.home))
        app.workspace()  # the default workspace exists from the first start
        return app

    def close(self) -> None:
        self.engine.dispose()

    def workspace(self) -> Workspace:
        found = objects.find(self.engine, Workspace, name=DEFAULT_WORKSPACE)
        if found:
            return found[0]
        workspace = Workspace(
            id="ws_default",
            name=DEFAULT_WORKSPACE,
            customer_model=DEFAULT_MODEL.as_list(),
            warehouse_url=None,
            created_at=utcnow(),
        )
        return objects.add(self.engine, workspace)

    def model(self) -> CustomerModel:
        return CustomerModel.from_list(self.workspace().customer_model)

    def warehouse_url(self) -> str:
        return self.workspace().warehouse_url or self.settings.default_warehouse_url

    def warehouse(self) -> Warehouse:
        """Open the workspace's warehouse with its tables matching the Customer Model."""
        warehouse = connect_warehouse(self.warehouse_url())
        warehouse.ensure_columns(self.model().columns)
        return warehouse
