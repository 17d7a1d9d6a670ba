"""Users, sessions and API tokens as plain dataclasses (no I/O).

None of them holds a secret in clear: a password is kept as its argon2 hash, a session
id and an API token as their SHA-256 digests (both are 256-bit random values, so a fast
hash is enough; a slow one would only slow every request down).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class User:
    id: str
    email: str  # as given (trimmed); unique case-insensitively
    password_hash: str
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "created_at": self.created_at.isoformat()}


@dataclass
class Session:
    """A signed-in browser: `workspace_id` is the workspace it acts on (chosen by the
    user among theirs). Valid until `expires_at` unless revoked (signed out)."""

    id: str
    user_id: str
    workspace_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


@dataclass
class ApiToken:
    """An API token of one workspace; `prefix` (its first characters) is what lists show."""

    id: str
    workspace_id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        def iso(ts: datetime | None) -> str | None:
            return None if ts is None else ts.isoformat()

        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "workspace_id": self.workspace_id,
            "created_at": self.created_at.isoformat(),
            "last_used_at": iso(self.last_used_at),
            "revoked_at": iso(self.revoked_at),
        }


#: What an invitation can be. A `pending` invitation past its `expires_at` is expired
#: (stored so once the same email is invited again).
INVITATION_STATES = ("pending", "accepted", "declined", "revoked", "expired")


@dataclass
class Invitation:
    """An email invited to a workspace by one of its members (`invited_by`, a user id;
    None for an API token or the operator's CLI). It grants nothing until the user
    whose email it is accepts it, before `expires_at`.

    `email` is as the inviter typed it (trimmed): never an account's own spelling, so
    that an invitation tells the inviter nothing about which emails have accounts."""

    id: str
    workspace_id: str
    email: str
    invited_by: str | None
    status: str  # pending, accepted, declined, revoked or expired (see `state`)
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None = None

    def state(self, now: datetime) -> str:
        """`status`, or ``expired`` for a pending invitation past its time."""
        return "expired" if self.status == "pending" and self.expires_at <= now else self.status
