"""Who is making a request: the one value the API's dependencies hand to routes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """An authenticated caller acting on `workspace_id`: a signed-in user (`user_id` and
    `session_id` set) or an API token (`token_id` set, no user)."""

    workspace_id: str
    user_id: str | None = None
    token_id: str | None = None
    session_id: str | None = None


def digest(secret: str) -> str:
    """How a session id or an API token is stored and looked up: its SHA-256 hex digest.
    Both are 256-bit random values, so no salt or slow hash is needed (a guess is as
    hard as the secret itself)."""
    return hashlib.sha256(secret.encode()).hexdigest()
