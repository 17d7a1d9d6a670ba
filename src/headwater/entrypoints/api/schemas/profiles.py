"""Unified profile documents (`services.profiles`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ProfileSummary(BaseModel):
    id: str = Field(description="The profile's stable id.")
    identity_count: int = Field(description="How many identities it unifies.")
    updated_at: str | None = Field(description="When it last changed (ISO 8601).")
    values: dict[str, Any] = Field(description="Its values by Customer Model column.")


class ProfileList(BaseModel):
    data: list[ProfileSummary] = Field(description="Profiles, most recently changed first.")
    has_more: bool = Field(description="Whether more profiles follow this page.")


class ProfileIdentity(BaseModel):
    pipeline_id: str = Field(description="The pipeline that imported it.")
    pipeline: str | None = Field(description="That pipeline's name.")
    source_id: str = Field(description="The Stripe customer's id.")
    source_updated_at: str | None = Field(description="When Stripe last changed it.")
    values: dict[str, Any] = Field(description="Its values by Customer Model column.")


class ProfileChange(BaseModel):
    kind: str = Field(description="`merge` or `split`.")
    before: list[str] = Field(description="Profile ids before.")
    after: list[str] = Field(description="Profile ids after.")
    run_id: str | None = Field(description="The run (or rebuild) that made it.")
    at: str | None = Field(description="When (ISO 8601).")


class ProfilePublic(ProfileSummary):
    identities: list[ProfileIdentity] = Field(description="The identities it unifies.")
    changes: list[ProfileChange] = Field(description="Its merges and splits.")


class RebuildPublic(BaseModel):
    considered: int = Field(description="Identities considered.")
    written: int = Field(description="Profiles written (new or changed).")
    removed: int = Field(description="Profiles that no longer exist.")
    changes: int = Field(description="Merges and splits.")
