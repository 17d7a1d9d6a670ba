"""The Stripe customer schema derived from the packaged OpenAPI extract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headwater.adapters.connectors.stripe.schema import STRIPE_API_VERSION, STRIPE_CUSTOMER_SCHEMA
from headwater.kernel.schema import Kind, leaf_paths, lookup, split_path

FIXTURE = Path(__file__).parents[3] / "shared" / "stripe" / "customer-fixture.json"


@pytest.mark.parametrize(
    ("path", "kind", "nullable"),
    [
        ("email", Kind.STRING, True),
        ("id", Kind.STRING, False),
        ("balance", Kind.INTEGER, False),
        ("created", Kind.TIMESTAMP, False),
        ("delinquent", Kind.BOOLEAN, True),
        ("address", Kind.OBJECT, True),
        ("address.country", Kind.STRING, True),
        ("shipping.address.city", Kind.STRING, True),
        ("discount.coupon.percent_off", Kind.NUMBER, True),
        ("discount.coupon.redeem_by", Kind.TIMESTAMP, True),
        ("invoice_settings.footer", Kind.STRING, True),
        ("metadata", Kind.MAP, False),
        ("metadata.plan", Kind.STRING, False),
        ("metadata.any.dotted key", Kind.STRING, False),
        ("preferred_locales", Kind.ARRAY, True),
        ("tax_exempt", Kind.STRING, True),
        ("default_source", Kind.STRING, True),  # expandable: the id unless expanded
        ("cash_balance", Kind.JSON, True),
    ],
)
def test_lookup_types(path: str, kind: Kind, nullable: bool) -> None:
    ft = lookup(path, STRIPE_CUSTOMER_SCHEMA)
    assert ft is not None
    assert ft.kind is kind
    assert ft.nullable is nullable


def test_enums_and_descriptions() -> None:
    tax_exempt = lookup("tax_exempt", STRIPE_CUSTOMER_SCHEMA)
    assert tax_exempt is not None
    assert tax_exempt.enum == ("exempt", "none", "reverse")
    email = lookup("email", STRIPE_CUSTOMER_SCHEMA)
    assert email is not None
    assert "email" in email.description.lower()
    assert STRIPE_API_VERSION == "2024-06-20"


@pytest.mark.parametrize("path", ["nope", "address.nope", "email.x", "", "address.", ".email"])
def test_unknown_paths(path: str) -> None:
    assert lookup(path, STRIPE_CUSTOMER_SCHEMA) is None


def test_metadata_keys_keep_their_dots() -> None:
    assert split_path("metadata.plan.tier", STRIPE_CUSTOMER_SCHEMA) == ["metadata", "plan.tier"]
    assert split_path("address.city", STRIPE_CUSTOMER_SCHEMA) == ["address", "city"]


def test_leaf_paths_cover_the_fixture() -> None:
    paths = dict(leaf_paths(STRIPE_CUSTOMER_SCHEMA))
    assert "address.city" in paths
    assert "metadata" in paths
    assert "created" in paths
    fixture = json.loads(FIXTURE.read_text())["customer"]
    # Every top-level key Stripe's own example returns is described.
    assert set(fixture) <= set(STRIPE_CUSTOMER_SCHEMA.fields)
