"""``/model``, ``/warehouse`` and ``/identity-resolution``: the workspace's settings.
Each Customer Model change alters the warehouse tables in the same step.

The Customer Model's service locates a refusal at the property (``Plan``, ``email``);
here it is located at the request's field that holds it (`_at`), as every API error is."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter

from headwater.entrypoints.api.deps import CheckedInput, WorkspaceApp
from headwater.entrypoints.api.json_route import StrictJsonRoute
from headwater.entrypoints.api.params import (
    PropertyPath,
)
from headwater.entrypoints.api.schemas import plain
from headwater.entrypoints.api.schemas.settings import (
    IdentityPublic,
    IdentitySet,
    ModelPublic,
    PropertyCreate,
    PropertyRename,
    WarehousePublic,
    WarehouseSet,
)
from headwater.kernel.errors import InvalidInput
from headwater.kernel.model import CustomerModel
from headwater.services import model as model_service
from headwater.services import profiles
from headwater.services import warehouse as warehouse_service

router = APIRouter(route_class=StrictJsonRoute, dependencies=[CheckedInput])


@contextmanager
def _at(field: str) -> Iterator[None]:
    """A refusal of the Customer Model's service, located at the request's `field`
    (its message still names the property)."""
    try:
        yield
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field) from None


def _model(model: CustomerModel) -> ModelPublic:
    return ModelPublic.model_validate({"properties": model.as_list()})


@router.get(
    "/model", tags=["model"], summary="Show the Customer Model", response_model_exclude_none=True
)
def show_model(app: WorkspaceApp) -> ModelPublic:
    """The workspace's Customer Model: its properties in order."""
    return _model(app.model())


@router.post(
    "/model/properties",
    tags=["model"],
    status_code=201,
    summary="Add a property",
    response_model_exclude_none=True,
)
def add_property(body: PropertyCreate, app: WorkspaceApp) -> ModelPublic:
    """Add a property (its warehouse columns too); the model after the change."""
    with _at("path"):
        return _model(model_service.add(app, body.path, body.type, body.description))


@router.post(
    "/model/properties/{path}/rename",
    tags=["model"],
    summary="Rename a property",
    response_model_exclude_none=True,
)
def rename_property(path: PropertyPath, body: PropertyRename, app: WorkspaceApp) -> ModelPublic:
    """Rename the property at `path` (`plan`, `address.city`); its columns are renamed
    and their data kept."""
    with _at("name"):
        return _model(model_service.rename(app, path, body.name))


@router.delete(
    "/model/properties/{path}",
    tags=["model"],
    summary="Drop a property",
    response_model_exclude_none=True,
)
def drop_property(path: PropertyPath, app: WorkspaceApp) -> ModelPublic:
    """Drop the property at `path` and its warehouse columns with their data."""
    with _at("path"):
        return _model(model_service.drop(app, path))


@router.get("/warehouse", tags=["warehouse"], summary="Show the warehouse")
def show_warehouse(app: WorkspaceApp) -> WarehousePublic:
    """Where customers land (the URL masked) and what it holds."""
    return WarehousePublic.model_validate(plain(warehouse_service.describe(app)))


@router.put("/warehouse", tags=["warehouse"], summary="Set the warehouse")
def set_warehouse(body: WarehouseSet, app: WorkspaceApp) -> WarehousePublic:
    """Test the warehouse and create its tables, then save it (encrypted). A warehouse
    that cannot be reached or used is refused and the old one kept. A DuckDB file set
    here lives in the workspace's own folder of the data directory (the error says
    where), so that no workspace can reach another's file."""
    warehouse_service.set_url(app, body.url.get_secret_value(), confined=True)
    return WarehousePublic.model_validate(plain(warehouse_service.describe(app)))


@router.get("/identity-resolution", tags=["profiles"], summary="Show identity resolution")
def show_identity(app: WorkspaceApp) -> IdentityPublic:
    """The ordered identifiers and their blocked values."""
    return IdentityPublic.model_validate(profiles.current_settings(app).as_dict())


@router.put("/identity-resolution", tags=["profiles"], summary="Set identity resolution")
def set_identity(body: IdentitySet, app: WorkspaceApp) -> IdentityPublic:
    """Set the identifiers and blocked values; every profile is rebuilt under them
    before the answer (if the warehouse cannot be reached, by the next run)."""
    settings = profiles.set_settings(app, body.identifiers, body.blocked)
    return IdentityPublic.model_validate(settings.as_dict())
