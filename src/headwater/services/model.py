"""Customer Model edits; each one alters the warehouse tables in the same step.

What names a property follows it: a rename renames the identifiers and the mapping keys
at or under it, and a drop is refused while an identifier or a mapping sets it (either
was left naming nothing: resolutions, or every run of the pipeline, failed after it).
JavaScript and Python code name their keys as they run: a key the model no longer has
is that record's error.

Runs: a rename or drop is refused while a run is running; a run claimed just after that
check, or that read the model before it was saved, is kept from the old columns by the
warehouse's model generation (`adapters.warehouse.model_state`: README, "Customer Model
changes and runs")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from headwater.adapters.store import objects, run_queries
from headwater.adapters.warehouse.contract import ModelChange
from headwater.kernel.entities import Pipeline, utcnow
from headwater.kernel.errors import Conflict, InvalidInput
from headwater.kernel.model import CustomerModel, PropertyType
from headwater.kernel.model_edits import (
    ColumnChanges,
    add_property,
    drop_property,
    rename_property,
)
from headwater.services.app import App
from headwater.services.identity import settings_from_dict
from headwater.services.profiles import current_settings


def _apply(
    app: App,
    before: CustomerModel,
    model: CustomerModel,
    changes: ColumnChanges,
    identity: dict[str, Any] | None = None,
    pipelines: Sequence[Pipeline] = (),
) -> CustomerModel:
    """Alter the warehouse, then save the model (and `identity`, the identity settings
    that follow it, when given, and the `pipelines` whose mappings follow it) in one
    write."""
    if changes.renamed or changes.dropped:
        # A run imports with the model it started with: its writes after the change are
        # refused (the warehouse's model generation), so it would fail and be retried.
        # Said at once instead.  A queued run (or one claimed after this check) reads
        # the model when it starts: the generation keeps it from the old columns.
        running = run_queries.running_in_workspace(app.engine, app.workspace_id)
        if running:
            raise Conflict(
                f"runs {', '.join(running)} are importing with the current model; rename "
                "or drop properties once they have ended (or cancel them)"
            )
    # Alter the warehouse first, in one transaction: if it fails, the saved model still
    # matches the tables.  From its commit on, `before` is outdated there: a run that
    # read it (the model is saved below) neither adds its columns back nor writes.
    change = ModelChange(before.columns, model.columns, changes.renamed, changes.dropped)
    warehouse = app.warehouse()
    try:
        warehouse.change_model(change)
    finally:
        warehouse.close()
    workspace = app.workspace()
    workspace.customer_model = model.as_list()
    saved = ["customer_model"]
    if identity is not None:
        workspace.identity_settings = identity
        saved.append("identity_settings")
    follow = [(p, ("transformation", "updated_at")) for p in pipelines]
    objects.save_together(app.engine, [(workspace, saved), *follow])
    return model


def add(app: App, path: str, ptype: str, description: str = "") -> CustomerModel:
    try:
        kind = PropertyType(ptype)
    except ValueError:
        allowed = ", ".join(t.value for t in PropertyType)
        raise InvalidInput(f"unknown type {ptype!r}; expected one of {allowed}", path) from None
    before = app.model()
    model, changes = add_property(before, path, kind, description)
    return _apply(app, before, model, changes)


def rename(app: App, path: str, new_name: str) -> CustomerModel:
    """Rename a property; identifiers at or under it are renamed with it (a renamed
    identifier was left naming nothing, and every resolution failed after each run)."""
    before = app.model()
    model, changes = rename_property(before, path, new_name)
    parent = path.rpartition(".")[0]
    new_path = f"{parent}.{new_name}" if parent else new_name
    stored = current_settings(app).as_dict()

    def moved(p: str) -> str:
        return new_path + p[len(path) :] if _under(p, path) else p

    identity = None
    if any(_under(p, path) for p in stored["identifiers"]):
        identity = {
            "identifiers": [moved(p) for p in stored["identifiers"]],
            "blocked": {moved(p): values for p, values in stored["blocked"].items()},
        }
        settings_from_dict(model, identity)  # still valid against the new model
    pipelines = _mapping(app, path)
    now = utcnow()
    for pipeline in pipelines:
        mapping = pipeline.transformation["mapping"]
        renamed = {moved(key): expression for key, expression in mapping.items()}
        pipeline.transformation = {**pipeline.transformation, "mapping": renamed}
        pipeline.updated_at = now
    return _apply(app, before, model, changes, identity, pipelines)


def drop(app: App, path: str) -> CustomerModel:
    """Drop a property; refused while an identifier is at or under it."""
    before = app.model()
    model, changes = drop_property(before, path)
    used = [p for p in current_settings(app).names if _under(p, path)]
    if used:
        raise InvalidInput(
            f"{', '.join(repr(p) for p in used)} identifies customers in identity "
            "resolution; take it out of the identifiers first (headwater identity set)",
            path,
        )
    mapped = _mapping(app, path)
    if mapped:
        named = ", ".join(f"pipeline {p.id} ({p.name})" for p in mapped)
        raise InvalidInput(
            f"{path!r} is set by the mapping of {named}; take it out of the mapping first "
            "(headwater pipelines update)",
            path,
        )
    return _apply(app, before, model, changes)


def _mapping(app: App, path: str) -> list[Pipeline]:
    """The workspace's pipelines whose mapping sets `path` or a property under it."""
    return [
        p
        for p in objects.find(app.engine, Pipeline, workspace_id=app.workspace_id)
        if p.transformation.get("kind") == "mapping"
        and any(_under(key, path) for key in p.transformation["mapping"])
    ]


def _under(candidate: str, path: str) -> bool:
    return candidate == path or candidate.startswith(path + ".")
