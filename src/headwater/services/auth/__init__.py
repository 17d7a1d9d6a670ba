"""Users, sessions, API tokens and workspaces (DESIGN.md §8).

- `users`: accounts with argon2 password hashes, members of one or more workspaces.
- `sessions`: sign-in (rate-limited per account and per address), server-side sessions
  that the console's cookie names, sign-out, choosing the session's workspace.
- `tokens`: ``hw_…`` API tokens of one workspace, shown once, stored hashed, revocable.
- `workspaces`: tenants; each has its own Customer Model, warehouse, connections,
  pipelines, identity settings and tokens.

`Principal` is who a request acts as; the API turns a cookie or a bearer token into one.
"""

from __future__ import annotations

from headwater.services.auth.principal import Principal

__all__ = ["Principal"]
