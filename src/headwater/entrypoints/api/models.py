"""Documents the auth routes exchange (`XCreate` in, `XPublic` out); the same shapes as
the CLI's ``--json`` output."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from headwater.kernel.accounts import ApiToken, User
from headwater.kernel.entities import Workspace
from headwater.services.auth import names, workspaces


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginCreate(Strict):
    email: str = Field(max_length=320, description="The user's email, in any case.")
    password: SecretStr = Field(max_length=1024, description="The user's password.")


class WorkspaceChoice(Strict):
    workspace_id: str = Field(
        min_length=1, max_length=40, description="One of the signed-in user's workspaces."
    )


class TokenCreate(Strict):
    name: str = Field(
        max_length=names.MAX,
        pattern=names.PATTERN,
        description="What the token is for, shown in lists (no control characters).",
    )


class WorkspaceCreate(Strict):
    name: str = Field(
        max_length=names.MAX,
        pattern=names.PATTERN,
        description="A name no workspace has (no control characters).",
    )


class InvitationCreate(Strict):
    email: str = Field(
        max_length=320,
        description="The email to invite, whether or not it has an account (nothing tells).",
    )
    # `POST /users` took a password for a new account: refused with a word of why, not
    # as an unknown field. (Not in the schema: it is no field of this document.)
    password: SkipJsonSchema[Any] = Field(default=None, exclude=True)

    @field_validator("password")
    @classmethod
    def _no_password(cls, value: Any) -> None:
        if value is not None:
            raise PydanticCustomError(
                "password_refused",
                "a member invites an email and sets no one's password: send the email "
                "alone (accounts are made by the operator, `headwater users add`)",
            )


class UserPublic(BaseModel):
    id: str = Field(description="The user's id (`usr_…`).")
    email: str = Field(description="The user's email.")
    created_at: str = Field(description="When the user was added (ISO 8601, UTC).")

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls(**user.public())


class WorkspacePublic(BaseModel):
    id: str = Field(description="The workspace's id (`ws_…`).")
    name: str = Field(description="The workspace's name.")
    created_at: str = Field(description="When the workspace was created (ISO 8601, UTC).")

    @classmethod
    def of(cls, workspace: Workspace) -> WorkspacePublic:
        return cls(**workspaces.document(workspace))


class MePublic(BaseModel):
    user: UserPublic | None = Field(
        description="The signed-in user; null when an API token authenticates the request."
    )
    workspace: WorkspacePublic = Field(description="The workspace the request acts on.")
    authenticated_by: Literal["session", "token"] = Field(
        description="`session` (the cookie of a signed-in user) or `token` (an API token)."
    )


class TokenPublic(BaseModel):
    id: str = Field(description="The token's id (`tok_…`), for revoking it.")
    name: str = Field(description="What the token is for.")
    prefix: str = Field(description="The token's first characters, to tell tokens apart.")
    workspace_id: str = Field(description="The workspace the token acts on.")
    created_at: str = Field(description="When it was created (ISO 8601, UTC).")
    last_used_at: str | None = Field(
        description="When it last authenticated a request (to the minute), or null."
    )
    revoked_at: str | None = Field(description="When it was revoked, or null if it is live.")

    @classmethod
    def of(cls, token: ApiToken) -> TokenPublic:
        return cls(**token.public())


class TokenCreated(TokenPublic):
    token: str = Field(
        description="The token itself (`hw_…`): shown this once, never again. "
        "Send it as `Authorization: Bearer hw_…`."
    )


class TokenList(BaseModel):
    data: list[TokenPublic] = Field(description="The workspace's tokens, newest first.")
    has_more: bool = Field(description="Whether more tokens follow this page.")


class WorkspaceList(BaseModel):
    data: list[WorkspacePublic] = Field(description="The caller's workspaces, newest first.")
    has_more: bool = Field(description="Whether more workspaces follow this page.")


class MemberPublic(BaseModel):
    id: str = Field(description="The user's id (`usr_…`).")
    email: str = Field(description="The user's email.")
    member_since: str = Field(description="When they became a member (ISO 8601, UTC).")


class MemberList(BaseModel):
    data: list[MemberPublic] = Field(description="The members, oldest membership first.")
    has_more: bool = Field(description="Whether more members follow this page.")


class InvitationPublic(BaseModel):
    id: str = Field(description="The invitation's id (`inv_…`).")
    email: str = Field(description="The email invited, as the inviter typed it.")
    workspace_id: str = Field(description="The workspace it invites to.")
    workspace_name: str = Field(description="That workspace's name.")
    invited_by: str | None = Field(
        description="The inviting member's email (null for an API token or the CLI)."
    )
    status: Literal["pending", "accepted", "declined", "revoked", "expired"] = Field(
        description="Pending until the invited user accepts or declines it, a member "
        "revokes it, or it expires."
    )
    created_at: str = Field(description="When it was made (ISO 8601, UTC).")
    expires_at: str = Field(description="When a pending invitation expires.")
    answered_at: str | None = Field(description="When it was accepted, declined or revoked.")


class InvitationList(BaseModel):
    data: list[InvitationPublic] = Field(description="The invitations, newest first.")
    has_more: bool = Field(description="Whether more invitations follow this page.")
