"""Unified profiles of the workspace: identity settings, listing, showing, rebuilding.

Thin functions over `services/identity` (the rules) and the workspace's warehouse (the
set-based reads and writes); the CLI and, later, the API call these.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from headwater.adapters.store import objects
from headwater.adapters.store.database import describe_error
from headwater.adapters.warehouse.contract import Warehouse
from headwater.adapters.warehouse.identity_rebuild import Outcome
from headwater.adapters.warehouse.profile_store import ProfileRecord
from headwater.kernel.entities import Pipeline, new_id, utcnow
from headwater.kernel.errors import HeadwaterError, InvalidInput, NotFound
from headwater.services.app import App
from headwater.services.identity import (
    Context,
    IdentitySettings,
    identity_settings,
    settings_from_dict,
)
from headwater.services.identity.warehouse import rebuild_in_warehouse, resolve_warehouse
from headwater.services.text import known_id, refuse_nul, refuse_surrogate, unknowable

log = logging.getLogger(__name__)


def current_settings(app: App) -> IdentitySettings:
    """The workspace's identity settings (the defaults until some are set)."""
    stored = app.workspace().identity_settings
    if stored is None:
        return identity_settings(app.model())
    return settings_from_dict(app.model(), stored)


def set_settings(
    app: App, identifiers: Sequence[str], blocked: Mapping[str, Sequence[str | int]] | None
) -> IdentitySettings:
    """Validate and save the workspace's identifiers and blocked values, then rebuild
    every profile under them (set-based, in the warehouse), so profiles never lag the
    settings.  If the warehouse cannot be reached the settings stay saved and the next
    resolution (after any run) rebuilds instead: its key table's fingerprint no longer
    matches them.
    """
    settings = identity_settings(app.model(), list(identifiers), blocked)
    workspace = app.workspace()
    workspace.identity_settings = settings.as_dict()
    objects.save(app.engine, workspace, only=["identity_settings"])
    try:
        rebuild_profiles(app)
    except HeadwaterError as exc:
        log.warning("identity settings saved; the rebuild waits for the next run: %s", exc)
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


def rebuild_profiles(app: App, at: datetime | None = None) -> Outcome:
    """Recompute every profile from all identities, set-based in the warehouse, and
    clear what was pending (a rebuild covers it)."""
    context = Context(new_id("rebuild"), at or utcnow(), pipeline_order(app))
    warehouse = app.warehouse()
    try:
        with warehouse.resolution_lock():
            settings = current_settings(app)  # under the lock: see `resolve_warehouse`
            batches, _ = warehouse.pending_summary()
            return rebuild_in_warehouse(warehouse, settings, context, batches)
    finally:
        warehouse.close()


def resolve_pending(
    app: App, warehouse: Warehouse, run_id: str | None = None, at: datetime | None = None
) -> Outcome:
    """Resolve the identities runs wrote or deleted since the last resolution
    (`resolve_warehouse`: incremental, or a set-based rebuild when most changed or the
    identity settings did).  Runs call this after their writes committed; whatever a
    crashed or cancelled run left pending is picked up here too."""
    context = Context(run_id or new_id("resolve"), at or utcnow(), pipeline_order(app))
    return resolve_warehouse(warehouse, lambda: current_settings(app), context)


def plan_summary(done: Outcome) -> dict[str, int]:
    """A resolution's outcome as counts (for a run's summary and the CLI)."""
    return {
        "considered": done.considered,
        "written": done.written,
        "removed": done.removed,
        "moved": done.moved,
        "merges": len(done.merges),
        "splits": len(done.splits),
    }


def resolve_after_run(app: App, warehouse: Warehouse, run_id: str) -> dict[str, Any]:
    """`resolve_pending` as the last step of a run: its outcome for the run's summary.

    A failure here does not fail the run (its rows committed); the identities stay
    pending and the next run, or `profiles rebuild`, resolves them.
    """
    try:
        return plan_summary(resolve_pending(app, warehouse, run_id))
    except Exception as exc:  # never fails the run: what it wrote stays pending
        message = exc.message if isinstance(exc, HeadwaterError) else describe_error(exc)
        log.warning("run %s: identity resolution failed: %s", run_id, message)
        return {"error": message, "note": "the run's identities stay pending for the next"}


def list_profiles(
    app: App, search: str | None = None, *, after: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Profiles (id, count, values), most recently changed first, after the profile
    `after`, at most `limit` (None: every one), optionally only those with a value
    containing `search` (case-insensitive); the warehouse pages and searches
    (`Warehouse.profile_page`)."""
    _searchable(search)
    if after is not None and unknowable(after):  # the warehouse cannot be asked
        raise InvalidInput(f"no profile with id {after!r}: list again", "starting_after")
    warehouse = app.warehouse()
    try:
        out: list[dict[str, Any]] = []
        place: str | tuple[Any, str] | None = after
        while limit is None or len(out) < limit:
            want = PAGE if limit is None else min(PAGE, limit - len(out))
            rows = warehouse.profile_page(search, place, want)
            out.extend(_summary(r) for r in rows)
            if len(rows) < want:
                break
            place = (rows[-1].updated_at, rows[-1].id)  # not the id: it may change
        return out
    finally:
        warehouse.close()


#: Profiles read per statement when listing.
PAGE = 10_000


def count_profiles(app: App, search: str | None = None) -> int:
    """How many profiles `list_profiles` lists in all."""
    _searchable(search)
    warehouse = app.warehouse()
    try:
        return warehouse.count_matching_profiles(search)
    finally:
        warehouse.close()


def _searchable(search: str | None) -> None:
    """`InvalidInput` at ``search`` for text no warehouse can be sent."""
    if search is not None:
        refuse_surrogate(refuse_nul(search, "search"), "search")


def _summary(r: ProfileRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "identity_count": r.identity_count,
        "updated_at": r.updated_at,
        "values": dict(r.values),
    }


def show_profile(app: App, profile_id: str) -> dict[str, Any]:
    """One profile: its values, its identities with their pipelines, its change history."""
    known_id(profile_id, "profile")
    warehouse = app.warehouse()
    try:
        found = warehouse.profile_records([profile_id])
        if not found:
            raise NotFound(f"no profile {profile_id!r} in the warehouse")
        members = warehouse.identities_in_profiles([profile_id])
        changes = warehouse.profile_changes(involving=profile_id)
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
