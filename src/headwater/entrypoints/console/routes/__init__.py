"""The console's pages, one router per screen."""

from __future__ import annotations

from headwater.entrypoints.console.routes import (
    auth,
    connection_settings,
    editor,
    identity,
    members,
    pipelines,
    runs,
    settings,
    sources,
)

ROUTERS = (
    auth.router,
    sources.router,
    pipelines.router,
    editor.router,
    runs.router,
    settings.router,
    connection_settings.router,
    identity.router,
    members.router,
)
