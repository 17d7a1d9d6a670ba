"""Error types shared by every layer.

Each error says whether retrying can help (`transient`) and carries a message from
which secrets have been stripped.  Layers raise these, entry points render them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Stripe secret/restricted/publishable keys and webhook secrets, plus Headwater's own
# API tokens (``hw_`` and at least 20 letters or digits, so that a name like ``hw_test``
# is left alone).
_SECRET = re.compile(
    r"\b((?:sk|rk|pk)_(?:live|test)_|whsec_|hw_(?=[A-Za-z0-9]{20}))([A-Za-z0-9_]+)"
)


def mask_secret(secret: str) -> str:
    """Return a display form of a secret: its prefix and last four characters."""
    match = _SECRET.match(secret)
    prefix = match.group(1) if match else ""
    tail = secret[-4:] if len(secret) >= 12 else ""
    return f"{prefix}…{tail}"


def redact(text: str) -> str:
    """Replace every secret-looking token in `text` with its masked form."""
    return _SECRET.sub(lambda m: mask_secret(m.group(0)), text)


class HeadwaterError(Exception):
    """Base of all Headwater errors; the message is always safe to show."""

    transient = False

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))

    @property
    def message(self) -> str:
        return str(self.args[0])


class TransientError(HeadwaterError):
    """A failure that may go away if the same operation is retried later."""

    transient = True


class TerminalError(HeadwaterError):
    """A failure that retrying will not fix (bad key, bad input, missing permission)."""


@dataclass(frozen=True)
class Problem:
    """One located error in user input: `location` is where in the document
    (``conditions[1]``, a mapping's property), `line`/`column` (1-based) where in
    its text when known (a mapping expression, a filter file)."""

    message: str
    location: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        text = self.message
        if self.line is not None:
            column = f", column {self.column}" if self.column is not None else ""
            text = f"line {self.line}{column}: {text}"
        return f"{self.location}: {text}" if self.location else text


class InvalidInput(TerminalError):
    """User input rejected; `location` says where (e.g. ``conditions[1]``, ``email``).

    `problems` lists every error found (at least one); the message shows them all,
    one per line, and `location` is the first one's.  `in_document` (set by `of`): the
    problems are located inside a submitted document (a mapping's properties, a filter's
    conditions, a transformation's lines), so `location` may hold a word the user chose
    (a property called ``name``) rather than a field of the request.
    """

    def __init__(
        self, message: str, location: str | None = None, problems: Iterable[Problem] = ()
    ) -> None:
        # Given `problems`, `message` and `location` are expected to render them.
        self.problems = tuple(problems) or (Problem(message, location),)
        self.location = location
        self.in_document = False
        super().__init__(f"{location}: {message}" if location else message)

    @classmethod
    def of(cls, problems: Iterable[Problem]) -> InvalidInput:
        """One error carrying every problem found in a document (there must be at
        least one)."""
        found = tuple(problems)
        error = cls("\n".join(str(p) for p in found), None, found)
        error.location = found[0].location
        error.in_document = True
        return error


class NotFound(TerminalError):
    """A referenced object does not exist."""


class Conflict(TerminalError):
    """The operation conflicts with the current state (e.g. a run is already live)."""


class Unauthenticated(TerminalError):
    """No valid credentials: missing, forged, expired or revoked (HTTP 401)."""


class Forbidden(TerminalError):
    """Authenticated, but this request is not allowed (HTTP 403): e.g. a cross-site
    request carried by a session cookie."""


class RateLimited(TerminalError):
    """Too many attempts; retrying helps only after `retry_after` seconds (HTTP 429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message)


#: The ``type`` an error document gives each kind of error (the API's answers and the
#: CLI's ``--json``), most specific first; any other `HeadwaterError` is `BAD_REQUEST`.
ERROR_TYPES: tuple[tuple[type[HeadwaterError], str], ...] = (
    (InvalidInput, "invalid_input"),
    (NotFound, "not_found"),
    (Conflict, "conflict"),
    (Unauthenticated, "unauthenticated"),
    (Forbidden, "forbidden"),
    (RateLimited, "rate_limited"),
    (TransientError, "unavailable"),
)
BAD_REQUEST = "bad_request"


def error_type(exc: HeadwaterError) -> str:
    """The ``type`` of `exc`'s error document (`ERROR_TYPES`)."""
    return next((name for cls, name in ERROR_TYPES if isinstance(exc, cls)), BAD_REQUEST)
