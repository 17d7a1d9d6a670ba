"""The API's routers, included in this order by `create_api`."""

from __future__ import annotations

from fastapi import APIRouter

from headwater.entrypoints.api.routes import auth, tokens, workspaces

ROUTERS: tuple[APIRouter, ...] = (auth.router, tokens.router, workspaces.router)
