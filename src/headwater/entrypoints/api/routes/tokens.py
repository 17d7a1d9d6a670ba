"""``/tokens``: the workspace's API tokens (list, create once-shown, show, revoke)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from headwater.entrypoints.api.deps import CheckedInput, WorkspaceApp
from headwater.entrypoints.api.json_route import StrictJsonRoute
from headwater.entrypoints.api.models import TokenCreate, TokenCreated, TokenList, TokenPublic
from headwater.entrypoints.api.paging import Limit, StartingAfter
from headwater.services.auth import tokens

router = APIRouter(
    route_class=StrictJsonRoute, dependencies=[CheckedInput], prefix="/tokens", tags=["tokens"]
)

TokenId = Annotated[str, Path(max_length=40, description="The token's id (`tok_…`).")]


@router.get("", summary="List tokens")
def list_tokens(
    app: WorkspaceApp, limit: Limit = 20, starting_after: StartingAfter = None
) -> TokenList:
    """The workspace's tokens, newest first, revoked ones included (never the tokens
    themselves: their name and first characters)."""
    found, has_more = tokens.list_tokens(app, limit, starting_after)
    return TokenList(data=[TokenPublic.of(t) for t in found], has_more=has_more)


@router.post("", status_code=201, summary="Create a token")
def create_token(body: TokenCreate, app: WorkspaceApp) -> TokenCreated:
    """A new token of the workspace. The response holds the token itself: it is shown
    this once and stored only as a digest."""
    raw, token = tokens.create_token(app, body.name)
    return TokenCreated(**token.public(), token=raw)


@router.get("/{token_id}", summary="Show a token")
def show_token(token_id: TokenId, app: WorkspaceApp) -> TokenPublic:
    """One token of the workspace (404 for another workspace's)."""
    return TokenPublic.of(tokens.get_token(app, token_id))


@router.post("/{token_id}/revoke", summary="Revoke a token")
def revoke_token(token_id: TokenId, app: WorkspaceApp) -> TokenPublic:
    """Revoke the token at once: its next request answers 401. Revoking twice is harmless."""
    return TokenPublic.of(tokens.revoke_token(app, token_id))
