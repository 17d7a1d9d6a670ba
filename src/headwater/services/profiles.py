"""Unified profiles of the workspace: identity settings, listing, showing, rebuilding.

Thin functions over `services/identity` (the rules) and the workspace's warehouse (the
set-based reads and writes); the CLI and, later, the API call these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from headwater.adapters.store import objects
from headwater.kernel.entities import Pipeline, new_id, utcnow
from headwater.kernel.errors import InvalidInput, NotFound
from headwater.services.app import App
from headwater.services.identity import (
    Context,
    IdentitySettings,
    ProfilePlan,
    identity_settings,
    rebuild,
    settings_from_dict,
)
from headwater.services.identity.warehouse import WarehouseIdentityStore


def current_settings(app: App) -> IdentitySettings:
    """The workspace's identity settings (the defaults until some are set)."""
    stored = app.workspace().identity_settings
    if stored is None:
        return identity_settings(app.model())
    return settings_from_dict(app.model(), stored)


def set_settings(
    app: App, identifiers: Sequence[str], blocked: Mapping[str, Sequence[str | int]] | None
) -> IdentitySettings:
    """Validate and save the workspace's identifiers and blocked values.

    Profiles are not recomputed here: `rebuild_profiles` makes them follow the new rules.
    """
    settings = identity_settings(app.model(), list(identifiers), blocked)
    workspace = app.workspace()
    workspace.identity_settings = settings.as_dict()
    objects.save(app.engine, workspace, only=["identity_settings"])
    return settings


def blocked_from_text(text: str, where: str) -> dict[str, Any]:
    """A blocked-values file: a JSON object of identifier path -> list of values."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"not valid JSON: {exc}", where) from None
    if not isinstance(data, dict):
        raise InvalidInput(
            'must be a JSON object of identifier -> list of values, e.g. {"email": ["a@b.c"]}',
            where,
        )
    return data


def pipeline_order(app: App) -> tuple[str, ...]:
    """The workspace's pipelines in creation order (values tie-break, DESIGN §10)."""
    found = objects.find(app.engine, Pipeline, workspace_id=app.workspace().id)
    return tuple(p.id for p in sorted(found, key=lambda p: (p.created_at, p.id)))


def rebuild_profiles(app: App, at: datetime | None = None) -> ProfilePlan:
    """Recompute every profile from all identities and write the difference."""
    settings = current_settings(app)
    context = Context(new_id("rebuild"), at or utcnow(), pipeline_order(app))
    warehouse = app.warehouse()
    try:
        store = WarehouseIdentityStore(warehouse, settings)
        with warehouse.resolution_lock():
            plan = rebuild(store, settings, context)
            store.apply(plan)
    finally:
        warehouse.close()
    return plan


def list_profiles(app: App, search: str | None = None) -> list[dict[str, Any]]:
    """Every profile (id, count, values), optionally only those with a value containing
    `search` (case-insensitive)."""
    warehouse = app.warehouse()
    try:
        rows = warehouse.profile_records(None)
    finally:
        warehouse.close()
    needle = search.strip().lower() if search else ""
    out = []
    for r in sorted(rows, key=lambda r: r.id):
        if needle and not any(needle in str(v).lower() for v in r.values.values() if v is not None):
            continue
        out.append(
            {
                "id": r.id,
                "identity_count": r.identity_count,
                "updated_at": r.updated_at,
                "values": dict(r.values),
            }
        )
    return out


def show_profile(app: App, profile_id: str) -> dict[str, Any]:
    """One profile: its values, its identities with their pipelines, its change history."""
    warehouse = app.warehouse()
    try:
        found = warehouse.profile_records([profile_id])
        if not found:
            raise NotFound(f"no profile {profile_id!r} in the warehouse")
        members = warehouse.identities_in_profiles([profile_id])
        changes = [
            c
            for c in warehouse.profile_changes()
            if profile_id in c.before or profile_id in c.after
        ]
    finally:
        warehouse.close()
    names = {
        p.id: p.name for p in objects.find(app.engine, Pipeline, workspace_id=app.workspace().id)
    }
    [row] = found
    return {
        "id": row.id,
        "identity_count": row.identity_count,
        "updated_at": row.updated_at,
        "values": dict(row.values),
        "identities": [
            {
                "pipeline_id": m.pipeline_id,
                "pipeline": names.get(m.pipeline_id),
                "source_id": m.source_id,
                "source_updated_at": m.source_updated_at,
                "values": dict(m.values),
            }
            for m in sorted(members, key=lambda m: (m.pipeline_id, m.source_id))
        ],
        "changes": [
            {
                "kind": c.kind,
                "before": list(c.before),
                "after": list(c.after),
                "run_id": c.run_id,
                "at": c.at,
            }
            for c in changes
        ],
    }
