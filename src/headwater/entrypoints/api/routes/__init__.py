"""The API's routers, included in this order by `create_api`."""

from __future__ import annotations

from fastapi import APIRouter

from headwater.entrypoints.api.routes import (
    auth,
    connections,
    definitions,
    invitations,
    pipelines,
    profiles,
    runs,
    settings,
    tokens,
    users,
    webhooks,
    workspaces,
)

ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    connections.router,
    settings.router,
    definitions.router,
    pipelines.router,
    runs.router,
    profiles.router,
    tokens.router,
    users.router,
    invitations.router,
    workspaces.router,
    webhooks.router,
    webhooks.settings,
)
