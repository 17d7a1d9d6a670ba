"""API tokens: ``hw_`` and 43 random letters and digits (256 bits), shown once at
creation, stored as their SHA-256 digest, listed by name and prefix, revocable.

A token belongs to one workspace and acts on it alone.

A token found valid is trusted for `TRUSTED_FOR` without asking the store again (each
process keeps its own memory of them, per store): checking it costs a store read, and
an API client sends the same token with every request.  Revoking a token in this
process forgets it at once; a token revoked by another process (``headwater tokens
revoke`` beside a running ``headwater serve``) is refused within `TRUSTED_FOR`.  A
check that read the token before a revocation here ended does not trust it afterwards
(each revocation here is counted, and what a check found is kept only when none came
since it began).
"""

from __future__ import annotations

import re
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

from sqlalchemy import Engine

from headwater.adapters.store import accounts
from headwater.kernel.accounts import ApiToken
from headwater.kernel.entities import new_id, utcnow
from headwater.kernel.errors import InvalidInput
from headwater.services.app import App
from headwater.services.auth.names import checked_name
from headwater.services.auth.principal import Principal, digest
from headwater.services.text import known_id, refuse_nul

PREFIX = "hw_"
_ALPHABET = string.ascii_letters + string.digits
_LENGTH = 43  # 62**43 > 2**256
_SHAPE = re.compile(rf"{PREFIX}[A-Za-z0-9]{{{_LENGTH}}}")
#: How much of a token lists show: enough to tell tokens apart, far too little to guess.
SHOWN = len(PREFIX) + 6
MAX_PAGE = 100
#: How long (seconds) a token found valid is trusted before the store is asked again.
TRUSTED_FOR = 2.0


@dataclass(frozen=True)
class _Trusted:
    principal: Principal
    until: float  # `time.monotonic()` after which the store is asked again


@dataclass
class _Memory:
    """A store's tokens found valid lately, by their digest (only valid tokens enter
    it, so it holds at most one entry per live token), and how many revocations this
    process made on that store."""

    trusted: dict[str, _Trusted] = field(default_factory=dict)
    revocations: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_memories: WeakKeyDictionary[Engine, _Memory] = WeakKeyDictionary()
_memories_lock = threading.Lock()


def _memory(engine: Engine) -> _Memory:
    with _memories_lock:
        memory = _memories.get(engine)
        if memory is None:
            memory = _memories[engine] = _Memory()
        return memory


def create_token(app: App, name: str) -> tuple[str, ApiToken]:
    """A new token of `app`'s workspace: the raw token (show it once, it is not kept)
    and what is stored. `InvalidInput` (field ``name``) for an empty or long name."""
    name = checked_name(name, "token")
    raw = PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
    token = ApiToken(
        id=new_id("tok"),
        workspace_id=app.workspace().id,
        name=name,
        prefix=raw[:SHOWN],
        created_at=utcnow(),
    )
    return raw, accounts.add_token(app.engine, token, digest(raw))


def trusted_principal(app: App, raw: str) -> Principal | None:
    """Who `raw` authenticates if it was found valid less than `TRUSTED_FOR` ago (no
    I/O: callers on an event loop try this first); else None, and
    `principal_for_token` decides."""
    memory = _memories.get(app.engine)
    known = None if memory is None else memory.trusted.get(digest(raw))
    if known is None or known.until < time.monotonic():
        return None
    return known.principal


def principal_for_token(app: App, raw: str) -> Principal | None:
    """Who `raw` authenticates, or None when it is malformed, unknown or revoked."""
    if not _SHAPE.fullmatch(raw):
        return None
    hashed = digest(raw)
    memory = _memory(app.engine)
    revocations = memory.revocations  # before the read: a revocation after it counts
    token = accounts.token_by_hash(app.engine, hashed)
    if token is None or token.revoked_at is not None:
        return None
    accounts.touch_token(app.engine, token, utcnow())
    principal = Principal(workspace_id=token.workspace_id, token_id=token.id)
    with memory.lock:
        if memory.revocations == revocations:
            memory.trusted[hashed] = _Trusted(principal, time.monotonic() + TRUSTED_FOR)
    return principal


def list_tokens(
    app: App, limit: int = MAX_PAGE, starting_after: str | None = None
) -> tuple[list[ApiToken], bool]:
    """`app`'s workspace's tokens, newest first, revoked ones included; and whether more
    follow. `starting_after` is the last token id of the previous page."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"must be between 1 and {MAX_PAGE}", "limit")
    if starting_after is not None:
        refuse_nul(starting_after, "starting_after")
    return accounts.list_tokens(app.engine, app.workspace_id, limit, starting_after)


def get_token(app: App, token_id: str) -> ApiToken:
    """The workspace's token (`NotFound` for another workspace's, as for a missing one)."""
    return accounts.get_token(app.engine, known_id(token_id, "token"), app.workspace_id)


def revoke_token(app: App, token_id: str) -> ApiToken:
    """Revoke the token: its next request to this process is refused, and within
    `TRUSTED_FOR` its requests to any other. Revoking twice is harmless."""
    token_id = known_id(token_id, "token")
    token = accounts.revoke_token(app.engine, token_id, app.workspace_id, utcnow())
    memory = _memory(app.engine)
    with memory.lock:
        memory.revocations += 1
        for hashed, known in list(memory.trusted.items()):
            if known.principal.token_id == token_id:
                del memory.trusted[hashed]
    return token
