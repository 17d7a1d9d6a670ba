"""One-shot messages carried across a redirect, so every form is Post/Redirect/Get.

A form post that changes something answers with a redirect (303) to a page; what the
post has to tell ("Token created", "Connected to duckdb", a new token to copy once) is
kept here, bound to the poster's session, and taken by the next page that session
renders. Reloading that page (or going back to it) shows nothing again and posts
nothing again. The message never travels in a URL.

The store is the serving process's memory (DESIGN.md §7: one process serves HTTP), keyed
by the session's digest: another session cannot take it, and a message not taken within
`KEEP` (or past `LIMIT` pending messages) is dropped.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum

from headwater.services.auth.principal import digest

#: How long a message waits for the page that shows it (a redirect takes milliseconds).
KEEP = 300.0
#: Messages kept at most, all sessions together (the oldest go first).
LIMIT = 10_000


class Kind(StrEnum):
    OK = "ok"  # an action's visible result
    ERROR = "error"  # why an action was not done
    WARNING = "warning"  # done, but something is left for the user to do
    TOKEN = "token"  # a new API token, shown once by the tokens page  # noqa: S105


MESSAGES = (Kind.OK, Kind.WARNING, Kind.ERROR)  # shown by every page, unlike a token


@dataclass(frozen=True)
class Flash:
    kind: Kind
    text: str
    secret: str | None = None  # only for `Kind.TOKEN`: the token itself


@dataclass
class _Pending:
    flash: Flash
    session: str  # the session's digest
    at: float = field(default_factory=time.monotonic)


class Flashes:
    """The pending messages of every session (thread-safe: page handlers run in a pool)."""

    def __init__(self) -> None:
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()

    def put(self, session: str, flash: Flash) -> None:
        """Keep `flash` for the next page of the session whose raw id is `session`."""
        with self._lock:
            self._expire()
            self._pending.append(_Pending(flash, digest(session)))
            del self._pending[:-LIMIT]

    def take(self, session: str, kinds: tuple[Kind, ...] = MESSAGES) -> list[Flash]:
        """The session's pending messages of `kinds`, oldest first, forgotten as taken."""
        key = digest(session)
        with self._lock:
            self._expire()
            mine = [p for p in self._pending if p.session == key and p.flash.kind in kinds]
            taken = {id(p) for p in mine}
            self._pending = [p for p in self._pending if id(p) not in taken]
        return [p.flash for p in mine]

    def _expire(self) -> None:
        oldest = time.monotonic() - KEEP
        self._pending = [p for p in self._pending if p.at >= oldest]
