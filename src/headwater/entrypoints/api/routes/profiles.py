"""``/profiles``: unified customers (list with search, show with identities and
changes, rebuild)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from headwater.entrypoints.api.deps import CheckedInput, WorkspaceApp
from headwater.entrypoints.api.json_route import StrictJsonRoute
from headwater.entrypoints.api.paging import Limit, StartingAfter
from headwater.entrypoints.api.params import (
    ProfileId,
)
from headwater.entrypoints.api.schemas import plain
from headwater.entrypoints.api.schemas.profiles import (
    ProfileList,
    ProfilePublic,
    ProfileSummary,
    RebuildPublic,
)
from headwater.services import profiles

router = APIRouter(
    route_class=StrictJsonRoute, dependencies=[CheckedInput], prefix="/profiles", tags=["profiles"]
)


@router.get("", summary="List profiles")
def list_profiles(
    app: WorkspaceApp,
    search: Annotated[
        str | None,
        Query(max_length=200, description="Only profiles with a value containing this text."),
    ] = None,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> ProfileList:
    """The workspace's unified profiles, most recently changed first; a page continues
    from the profile it starts after (a profile changed meanwhile moves to the front)."""
    found = profiles.list_profiles(app, search, after=starting_after, limit=limit + 1)
    return ProfileList(
        data=[ProfileSummary.model_validate(plain(p)) for p in found[:limit]],
        has_more=len(found) > limit,
    )


@router.post("/rebuild", summary="Rebuild every profile")
def rebuild_profiles(app: WorkspaceApp) -> RebuildPublic:
    """Recompute every profile from all identities (after changing identity resolution)."""
    done = profiles.rebuild_profiles(app)
    return RebuildPublic(
        considered=done.considered,
        written=done.written,
        removed=done.removed,
        changes=len(done.merges) + len(done.splits),
    )


@router.get("/{profile_id}", summary="Show a profile")
def show_profile(profile_id: ProfileId, app: WorkspaceApp) -> ProfilePublic:
    """One profile: its values, its identities with their pipelines, its changes."""
    return ProfilePublic.model_validate(plain(profiles.show_profile(app, profile_id)))
