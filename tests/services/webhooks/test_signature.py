"""The signature verifier with an injected clock: Stripe's scheme, both clock skews,
rolled secrets, and every way a header can be wrong."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import stripe

from headwater.sandbox.webhooks import sign
from headwater.services.webhooks.signature import BadSignature, expected_signature, verify

SECRET = "whsec_test_secret_value"
BODY = b'{"id":"evt_1","object":"event","type":"customer.created"}'
T = 1_780_000_000


class FixedClock:
    def __init__(self, ts: float) -> None:
        self.ts = ts

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.ts, UTC)


def test_the_sandboxs_signature_verifies_and_gives_the_signing_time() -> None:
    signed_at = verify(BODY, sign(BODY, SECRET, T), SECRET, FixedClock(T + 5))
    assert signed_at == datetime.fromtimestamp(T, UTC)


def test_our_digest_is_stripes() -> None:
    header = f"t={T},v1={expected_signature(BODY, SECRET, T)}"
    stripe.WebhookSignature.verify_header(BODY.decode(), header, SECRET, tolerance=None)


@pytest.mark.parametrize("offset", [-300, -299, 0, 299, 300])
def test_clock_skew_within_the_tolerance_either_way_is_accepted(offset: int) -> None:
    verify(BODY, sign(BODY, SECRET, T), SECRET, FixedClock(T + offset))


@pytest.mark.parametrize(("offset", "word"), [(301, "old"), (-301, "future"), (86400, "old")])
def test_a_stale_or_far_future_timestamp_is_refused(offset: int, word: str) -> None:
    with pytest.raises(BadSignature, match=word):
        verify(BODY, sign(BODY, SECRET, T), SECRET, FixedClock(T + offset))


def test_any_v1_matching_is_enough_while_a_secret_rolls() -> None:
    good = expected_signature(BODY, SECRET, T)
    old = expected_signature(BODY, "whsec_the_old_one", T)
    header = f"t={T},v1={old},v1={good},v0=deadbeef"
    verify(BODY, header, SECRET, FixedClock(T))
    with pytest.raises(BadSignature):
        verify(BODY, f"t={T},v1={old}", SECRET, FixedClock(T))


def test_a_changed_body_or_timestamp_breaks_the_signature() -> None:
    header = sign(BODY, SECRET, T)
    with pytest.raises(BadSignature, match="no v1 signature matches"):
        verify(BODY.replace(b"evt_1", b"evt_2"), header, SECRET, FixedClock(T))
    digest = header.split("v1=")[1]
    with pytest.raises(BadSignature, match="no v1 signature matches"):
        verify(BODY, f"t={T + 1},v1={digest}", SECRET, FixedClock(T))
    with pytest.raises(BadSignature, match="no v1 signature matches"):
        verify(BODY, header, "whsec_another_secret", FixedClock(T))


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "no Stripe-Signature"),
        ("", "no Stripe-Signature"),
        (f"v1={'a' * 64}", "no timestamp"),
        (f"t={T}", "no v1"),
        (f"t={T},v0={'a' * 64}", "no v1"),
        (f"t=abc,v1={'a' * 64}", "malformed"),
        (f"t=-5,v1={'a' * 64}", "malformed"),
        (f"t=\u00b2,v1={'a' * 64}", "malformed"),
        (f"t={T},t={T},v1={'a' * 64}", "repeated"),
        ("garbage", "no timestamp"),
        ("t=1," + "v1=x," * 2000, "too long"),
    ],
)
def test_malformed_headers_are_refused_with_a_reason(header: str | None, reason: str) -> None:
    with pytest.raises(BadSignature, match=reason):
        verify(BODY, header, SECRET, FixedClock(T))
