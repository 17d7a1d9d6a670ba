"""Saving a pipeline as every entry point does: store it, then try it on live customers.

The trial never refuses a save: a definition that most sample customers fail (say a
mapping that puts a name into a datetime) is saved with a warning that names the first
error, and so is one whose source cannot be reached right now.  The API returns the
warnings with the pipeline; the CLI prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from headwater.kernel.entities import Pipeline
from headwater.services.app import App
from headwater.services.pipelines import manage
from headwater.services.pipelines.preview import sample_warning


@dataclass(frozen=True)
class Saved:
    """A saved pipeline and the warnings its entry point shows."""

    pipeline: Pipeline
    warnings: list[str] = field(default_factory=list)


def _tried(app: App, pipeline: Pipeline) -> Saved:
    warning = sample_warning(app, pipeline)
    return Saved(pipeline, [warning] if warning else [])


def save_new(
    app: App,
    connection_id: str,
    name: str,
    transformation: dict[str, Any] | None = None,
    *,
    description: str = "",
    filter: dict[str, Any] | None = None,
    schedule: str | None = None,
    incremental: bool | None = None,
    enabled: bool = True,
) -> Saved:
    """Create a pipeline (defaults as in `manage.create`) and try it on sample customers."""
    pipeline = manage.create(
        app,
        connection_id,
        name,
        transformation,
        description=description,
        filter=filter,
        schedule=schedule,
        incremental=incremental,
        enabled=enabled,
    )
    return _tried(app, pipeline)


def save_changes(app: App, pipeline_id: str, changes: manage.PipelineChanges) -> Saved:
    """Change a pipeline; when its filter or transformation changed, try it on samples."""
    before = manage.get(app, pipeline_id)
    after = manage.update(app, pipeline_id, changes)
    if (after.filter, after.transformation) == (before.filter, before.transformation):
        return Saved(after)
    return _tried(app, after)
