"""Identifier settings: validation against the Customer Model, defaults, stored form."""

from __future__ import annotations

from typing import Any

import pytest
from tests.identity.world import MODEL

from headwater.kernel.errors import InvalidInput
from headwater.kernel.model import DEFAULT_MODEL
from headwater.services.identity import default_blocked, identity_settings, settings_from_dict
from headwater.services.identity.settings import EMAIL_PLACEHOLDERS, GENERIC_PLACEHOLDERS


def test_default_is_email_with_its_placeholders() -> None:
    settings = identity_settings(DEFAULT_MODEL)
    (email,) = settings.identifiers
    assert (email.path, email.column, email.type.value) == ("email", "email", "string")
    assert email.blocked == GENERIC_PLACEHOLDERS + EMAIL_PLACEHOLDERS
    assert "test@example.com" in email.blocked_exact
    assert email.blocked_pattern is not None
    assert email.blocked_pattern.match("noreply@shop.io")


def test_order_is_kept_and_nested_leaves_are_allowed() -> None:
    settings = identity_settings(MODEL, ["phone", "email", "address.city", "customer_no"])
    assert settings.names == ("phone", "email", "address.city", "customer_no")
    assert settings.identifiers[2].column == "address_city"
    assert settings.identifiers[3].blocked_exact == frozenset({0, -1})


@pytest.mark.parametrize(
    ("identifiers", "blocked", "where", "message"),
    [
        ([], None, "identifiers", "at least one identifier"),
        ("email", None, "identifiers", "a list of property paths"),
        (["email", "nickname"], None, "identifiers[1]", "'nickname' is not a Customer Model"),
        (["address"], None, "identifiers[0]", "'address' is an object"),
        (["score"], None, "identifiers[0]", "'score' is of type float"),
        (["email", "email"], None, "identifiers[1]", "'email' is listed twice"),
        ([""], None, "identifiers[0]", "a Customer Model property path"),
        ([3], None, "identifiers[0]", "a Customer Model property path"),
        (["email"], {"phone": ["x"]}, "blocked.phone", "not one of the identifiers"),
        (["email"], {"email": "n/a"}, "blocked.email", "a list of values"),
        (["email"], {"email": ["ok", "  "]}, "blocked.email[1]", "empty blocked value"),
        (["email"], {"email": ["a", None]}, "blocked.email[1]", "a string or an integer"),
        (["email"], {"email": ["**"]}, "blocked.email[0]", "would block every value"),
        (["customer_no"], {"customer_no": ["7", "x1"]}, "blocked.customer_no[1]", "not an integer"),
        (["email"], ["n/a"], "blocked", "an object"),
        # A BIGINT key: a larger blocked number was saved, then failed every rebuild.
        (["customer_no"], {"customer_no": [str(2**63)]}, "blocked.customer_no[0]", "range"),
        (["customer_no"], {"customer_no": [-(2**63) - 1]}, "blocked.customer_no[0]", "range"),
        (["customer_no"], {"customer_no": ["1_000"]}, "blocked.customer_no[0]", "not an int"),
        (["customer_no"], {"customer_no": ["\u0663"]}, "blocked.customer_no[0]", "not an int"),
        (["email"], {"email": ["x" * 501]}, "blocked.email[0]", "at most 500 characters"),
        (["email"], {"email": ["x"] * 10_001}, "blocked.email", "at most 10,000"),
        # Saved, then every rebuild (and so every resolution) failed on a PostgreSQL
        # warehouse, whose text never holds NUL; nor can any engine be sent half a
        # character.
        (["email"], {"email": ["ok", "a\x00@b.io"]}, "blocked.email[1]", "NUL"),
        (["email"], {"email": ["noreply\x00@*"]}, "blocked.email[0]", "NUL"),
        (["phone"], {"phone": ["+1 \udcff"]}, "blocked.phone[0]", "surrogate"),
    ],
)
def test_errors_say_what_and_where(
    identifiers: Any, blocked: Any, where: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        identity_settings(MODEL, identifiers, blocked)
    assert caught.value.location == where
    assert message in caught.value.message


def test_a_given_list_replaces_the_defaults_of_that_identifier_only() -> None:
    settings = identity_settings(MODEL, ["email", "phone"], {"email": ["Office@Shop.io", "n/a"]})
    email, phone = settings.identifiers
    assert email.blocked_exact == frozenset({"office@shop.io", "n/a"})
    assert email.blocked_pattern is None  # noreply@* was a default, now dropped
    assert phone.blocked == default_blocked("phone", phone.type)


def test_stored_form_round_trips_and_is_validated_again() -> None:
    settings = identity_settings(MODEL, ["email", "customer_no"], {"customer_no": [0, "42"]})
    data = settings.as_dict()
    assert data == {
        "identifiers": ["email", "customer_no"],
        "blocked": {
            "email": list(default_blocked("email", email_type())),
            "customer_no": ["0", "42"],
        },
    }
    assert settings_from_dict(MODEL, data) == settings
    with pytest.raises(InvalidInput, match=r"identifiers\[1\]: 'customer_no' is not"):
        settings_from_dict(DEFAULT_MODEL, data)  # the model lost the property


def email_type() -> Any:
    column = MODEL.column("email")
    assert column is not None
    return column.type


def test_wildcards_match_like_shell_patterns_in_linear_time() -> None:
    """A value of many ``*`` almost matching took exponential time as a regular
    expression (0.7 s at ten ``*a``, six times more for every two more): here 40."""
    settings = identity_settings(MODEL, ["email"], {"email": ["*a" * 40 + "*!", "ab*cd*ef"]})
    pattern = settings.identifiers[0].blocked_pattern
    assert pattern is not None
    assert not pattern.match("a" * 60 + "@x.io")
    assert pattern.match("a" * 60 + "!")
    for key, blocked in [
        ("abcdef", True),
        ("ab--cd--ef", True),
        ("abcdefef", True),
        ("abef", False),  # cd missing
        ("abcdf", False),
        ("abcde", False),
        ("abcdcdef", True),
        ("xabcdef", False),  # anchored at both ends
    ]:
        assert pattern.match(key) is blocked, key
    (star,) = identity_settings(MODEL, ["email"], {"email": ["a*a"]}).identifiers
    assert star.blocked_pattern is not None
    assert not star.blocked_pattern.match("a")  # the two ends may not overlap
    assert star.blocked_pattern.match("aa")
