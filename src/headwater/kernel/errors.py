"""Error types shared by every layer.

Each error says whether retrying can help (`transient`) and carries a message from
which secrets have been stripped.  Layers raise these, entry points render them.
"""

from __future__ import annotations

import re

# Stripe secret/restricted/publishable keys and webhook secrets, plus bearer tokens.
_SECRET = re.compile(r"\b((?:sk|rk|pk)_(?:live|test)_|whsec_)([A-Za-z0-9_]+)")


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


class InvalidInput(TerminalError):
    """User input rejected; `location` says where (e.g. ``conditions[1]``, ``email``)."""

    def __init__(self, message: str, location: str | None = None) -> None:
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class NotFound(TerminalError):
    """A referenced object does not exist."""


class Conflict(TerminalError):
    """The operation conflicts with the current state (e.g. a run is already live)."""
