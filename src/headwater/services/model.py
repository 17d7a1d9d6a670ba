"""Customer Model edits; each one alters the warehouse tables in the same step."""

from __future__ import annotations

from headwater.adapters.store import objects
from headwater.kernel.errors import InvalidInput
from headwater.kernel.model import CustomerModel, PropertyType
from headwater.kernel.model_edits import (
    ColumnChanges,
    add_property,
    drop_property,
    rename_property,
)
from headwater.services.app import App


def _apply(app: App, model: CustomerModel, changes: ColumnChanges) -> CustomerModel:
    # Alter the warehouse first: if it fails, the saved model still matches the tables.
    warehouse = app.warehouse()
    try:
        for old, new in changes.renamed:
            warehouse.rename_column(old, new)
        for name in changes.dropped:
            warehouse.drop_column(name)
        if changes.added:
            warehouse.ensure_columns(model.columns)
    finally:
        warehouse.close()
    workspace = app.workspace()
    workspace.customer_model = model.as_list()
    objects.save(app.engine, workspace, only=["customer_model"])
    return model


def add(app: App, path: str, ptype: str, description: str = "") -> CustomerModel:
    try:
        kind = PropertyType(ptype)
    except ValueError:
        allowed = ", ".join(t.value for t in PropertyType)
        raise InvalidInput(f"unknown type {ptype!r}; expected one of {allowed}", path) from None
    model, changes = add_property(app.model(), path, kind, description)
    return _apply(app, model, changes)


def rename(app: App, path: str, new_name: str) -> CustomerModel:
    model, changes = rename_property(app.model(), path, new_name)
    return _apply(app, model, changes)


def drop(app: App, path: str) -> CustomerModel:
    model, changes = drop_property(app.model(), path)
    return _apply(app, model, changes)
