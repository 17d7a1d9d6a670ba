"""Normalisation: how identifier values compare."""

from __future__ import annotations

from typing import Any

import pytest
from tests.identity.world import settings_for

from headwater.services.identity import normalise

EMAIL, PHONE, NUMBER = settings_for("email", "phone", "customer_no").identifiers


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("ann@shop.io", "ann@shop.io"),
        ("  Ann@Shop.IO\t", "ann@shop.io"),
        ("ANN@SHOP.IO\n", "ann@shop.io"),
        ("\x0bann@shop.io\x0c\r", "ann@shop.io"),
        ("ann @shop.io", "ann @shop.io"),  # inner spaces are part of the value
        ("\u00a0Ann@shop.io\u3000", "ann@shop.io"),  # any whitespace (Python keys these)
        ("\u2003\u00a0\u205f", None),  # spaces alone are no value, not one shared key
        ("ann\u00a0@shop.io", "ann\u00a0@shop.io"),  # inside, it is part of the value
        ("\x1cann@shop.io", "\x1cann@shop.io"),  # ASCII: the fixed set only (as in SQL)
        ("", None),
        ("   ", None),
        (None, None),
        (42, None),  # not a string: cannot identify by email
        ("test@example.com", None),
        (" TEST@Example.com ", None),
        ("noreply@shop.io", None),
        ("No-Reply@anything.example", None),
        ("donotreply@x.io", None),
        ("noreply-team@shop.io", "noreply-team@shop.io"),  # the pattern is noreply@*
        ("n/a", None),
        ("N/A", None),
        ("none", None),
        ("NULL", None),
        ("unknown", None),
        ("-", None),
        ("nobody@shop.io", "nobody@shop.io"),
    ],
)
def test_email(value: Any, key: Any) -> None:
    assert normalise(value, EMAIL) == key


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("+1 555 0100", "+1 555 0100"),
        (" +1 555 0100 ", "+1 555 0100"),
        ("Unknown", None),
        ("0", None),
        ("test@example.com", "test@example.com"),  # email placeholders are not phone ones
    ],
)
def test_phone(value: Any, key: Any) -> None:
    assert normalise(value, PHONE) == key


@pytest.mark.parametrize(
    ("value", "key"),
    [(7, 7), (0, None), (-1, None), (True, None), ("7", None), (7.0, None), (None, None)],
)
def test_integer(value: Any, key: Any) -> None:
    assert normalise(value, NUMBER) == key


def test_wildcards_match_any_run_and_nothing_else() -> None:
    (custom,) = settings_for("email", email=["*@mailinator.com", "bot+*@*.io"]).identifiers
    assert normalise("x@MAILINATOR.com", custom) is None
    assert normalise("x@mailinator.com.evil.io", custom) == "x@mailinator.com.evil.io"
    assert normalise("bot+1@a.io", custom) is None
    assert normalise("bot+1@a.iox", custom) == "bot+1@a.iox"
    assert normalise("a.b@mailinator.com", custom) is None  # '.' is literal, not a regex
    assert normalise("test@example.com", custom) == "test@example.com"  # defaults replaced
