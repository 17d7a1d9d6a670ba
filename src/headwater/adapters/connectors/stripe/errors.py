"""Errors raised by the Stripe connector.

Each one is transient or terminal (CONVENTIONS item 5) and carries the facts a user
needs to act: Stripe's own message, type and code, the HTTP status and the
``Request-Id`` to quote to Stripe support.  Messages pass through `redact`, so a key
that Stripe echoes back never leaks.
"""

from __future__ import annotations

from dataclasses import dataclass

from headwater.adapters.connectors.contract import PermissionMissing
from headwater.kernel.errors import InvalidInput, TerminalError, TransientError

__all__ = [
    "ApiFailure",
    "InvalidKey",
    "MalformedKey",
    "MalformedResponse",
    "PaginationLoop",
    "PermissionMissing",
    "RetriesExhausted",
    "SourceUnreachable",
    "StripeRequestFailed",
    "StripeTransientError",
]


@dataclass(frozen=True)
class ApiFailure:
    """What Stripe said about a failed request."""

    status: int
    type: str | None = None
    code: str | None = None
    message: str | None = None
    request_id: str | None = None

    def describe(self) -> str:
        kind = " ".join(p for p in (self.type, self.code) if p)
        text = f"HTTP {self.status}"
        if kind:
            text += f" {kind}"
        if self.message:
            text += f": {self.message}"
        if self.request_id:
            text += f" (Request-Id {self.request_id})"
        return text


class MalformedKey(InvalidInput):
    """The key does not look like a Stripe secret or restricted key."""


class InvalidKey(TerminalError):
    """Stripe rejected the key (HTTP 401): wrong, rolled or revoked."""

    def __init__(self, message: str, failure: ApiFailure | None = None) -> None:
        self.failure = failure
        super().__init__(message)


class StripeRequestFailed(TerminalError):
    """Stripe refused a request for a reason retrying cannot fix (a 4xx)."""

    def __init__(self, message: str, failure: ApiFailure) -> None:
        self.failure = failure
        super().__init__(message)


class StripeTransientError(TransientError):
    """A failure that may pass (5xx, 429, malformed body, network)."""


class RetriesExhausted(StripeTransientError):
    """Every allowed attempt failed with a retryable error."""

    def __init__(self, message: str, attempts: int, last: ApiFailure | None) -> None:
        self.attempts = attempts
        self.last = last
        super().__init__(message)


class SourceUnreachable(RetriesExhausted):
    """Stripe could not be reached at all (refused, DNS, timeout)."""


class MalformedResponse(StripeTransientError):
    """Stripe answered 200 with a body that is not the list we asked for."""


class PaginationLoop(TerminalError):
    """A pagination token came back twice: the list would never end."""
