"""Verifying ``Stripe-Signature`` (https://docs.stripe.com/webhooks#verify-manually).

The header is ``t=TIMESTAMP,v1=HEX[,v1=HEX...][,v0=...]``; the signed text is
``TIMESTAMP.`` followed by the raw body, exactly as received; each ``v1`` is the
HMAC-SHA256 hex digest of it under the endpoint's signing secret.  While a secret is
rolled Stripe sends one ``v1`` per active secret, so any matching ``v1`` is enough;
other schemes (``v0`` is test-mode only) are ignored.  Digests are compared in
constant time.

Tolerance: Stripe signs with its own clock and we judge with ours, so the timestamp
may be off in both directions: a delivery is accepted when the two clocks are at most
`tolerance` seconds apart either way (a replay older than that is refused; a future
timestamp within that bound is the sender's clock running ahead, not an attack).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from headwater.kernel.clock import Clock
from headwater.kernel.errors import TerminalError

TOLERANCE_SECONDS = 300
_MAX_HEADER = 4096


#: Why a delivery was refused, in a few fixed words: what a connection's webhook status
#: shows (`refusals`).  Never built from the delivery (no body, header or secret in it).
NO_HEADER = "no Stripe-Signature header"
MALFORMED = "malformed Stripe-Signature header"
MISMATCH = "signature does not match the stored secret"
STALE = "timestamp outside tolerance"
NOT_EVENT = "not an event"
#: Judged before any signature is read: the body is over `limits.MAX_BODY_BYTES` (413).
TOO_LARGE = "body over the size limit"


class BadSignature(TerminalError):
    """The delivery is not provably from Stripe: missing, malformed, wrong or stale
    signature.  The message is for logs; `reason` is one of the fixed reasons above
    (shown in the status); the sender gets one answer for all of them."""

    def __init__(self, message: str, reason: str = MALFORMED) -> None:
        super().__init__(message)
        self.reason = reason


def expected_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``v1`` digest Stripe sends for `payload` signed at `timestamp`."""
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(
    payload: bytes,
    header: str | None,
    secret: str,
    clock: Clock,
    tolerance: int = TOLERANCE_SECONDS,
) -> datetime:
    """Check `header` against `payload`; return the signing time or raise `BadSignature`."""
    if not header:
        raise BadSignature("no Stripe-Signature header", NO_HEADER)
    if len(header) > _MAX_HEADER:
        raise BadSignature("the Stripe-Signature header is too long")
    timestamp, digests = _parse(header)
    expected = expected_signature(payload, secret, timestamp).encode()
    # Compare against every v1 without stopping early: no timing tells which matched.
    matched = False
    for digest in digests:
        matched |= hmac.compare_digest(expected, digest.encode())
    if not matched:
        raise BadSignature("no v1 signature matches the body and the endpoint's secret", MISMATCH)
    now = clock.now()
    skew = now.timestamp() - timestamp
    if abs(skew) > tolerance:
        direction = "old" if skew > 0 else "in the future"
        seconds = abs(int(skew))
        raise BadSignature(
            f"the signature's timestamp is {seconds} s {direction} (tolerance {tolerance} s)",
            STALE,
        )
    return datetime.fromtimestamp(timestamp, tz=now.tzinfo)


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    digests: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if (
                not (value.isascii() and value.isdigit())
                or len(value) > 12
                or timestamp is not None
            ):
                raise BadSignature("the Stripe-Signature timestamp is malformed or repeated")
            timestamp = int(value)
        elif key == "v1":
            digests.append(value)
    if timestamp is None:
        raise BadSignature("the Stripe-Signature header has no timestamp")
    if not digests:
        raise BadSignature("the Stripe-Signature header has no v1 signature")
    return timestamp, digests
