"""Deterministic, realistic customers for ``--customers N --seed S``.

The same seed and clock start give the same customers.  Generation is one pass with a
seeded `random.Random`, about 20 draws per customer, rendered straight to JSON bytes.
Generated customers are pre-existing: they emit no events.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import orjson

from headwater.sandbox.customers import new_customer
from headwater.sandbox.geodata import (
    CHANNELS,
    COUNTRIES,
    DESCRIPTIONS,
    EMAIL_DOMAINS,
    PLANS,
    Country,
)
from headwater.sandbox.ids import ALPHABET
from headwater.sandbox.store import Stored

if TYPE_CHECKING:
    from headwater.sandbox.service import Sandbox

_WEIGHTED: tuple[Country, ...] = tuple(c for c in COUNTRIES for _ in range(c.weight))
# Byte -> character tables: random bytes become ids, digits and letters in one C call.
_ALNUM = bytes(ord(ALPHABET[b % 62]) for b in range(256))
_DIGIT = bytes(ord("0123456789"[b % 10]) for b in range(256))
_LETTER = bytes(ord("ABCDEFGHJKLMNPRSTUVWXYZ"[b % 23]) for b in range(256))
_TEMPLATES: dict[str, tuple[str, str]] = {}


def random_id(prefix: str, rng: random.Random, width: int = 14) -> str:
    return prefix + rng.randbytes(width).translate(_ALNUM).decode()


def _fill(pattern: str, rng: random.Random) -> str:
    """``#`` -> a random digit, ``A`` -> a random capital letter."""
    compiled = _TEMPLATES.get(pattern)
    if compiled is None:
        kinds = "".join(ch for ch in pattern if ch in "#A")
        template = "".join(
            "{}" if ch in "#A" else ch.replace("{", "{{").replace("}", "}}") for ch in pattern
        )
        compiled = _TEMPLATES[pattern] = (template, kinds)
    template, kinds = compiled
    raw = rng.randbytes(len(kinds))
    digits = raw.translate(_DIGIT).decode()
    if "A" not in kinds:
        return template.format(*digits)
    letters = raw.translate(_LETTER).decode()
    return template.format(
        *(d if k == "#" else c for k, d, c in zip(kinds, digits, letters, strict=True))
    )


def _address(c: Country, rng: random.Random) -> dict[str, Any]:
    city, state = c.cities[int(rng.random() * len(c.cities))]
    street = c.streets[int(rng.random() * len(c.streets))]
    r = rng.random()
    return {
        "city": city,
        "country": c.code,
        "line1": c.street_format.format(n=1 + int(r * 240), street=street),
        "line2": f"Apt {1 + int(r * 9000) % 60}" if r < 0.15 else None,
        "postal_code": _fill(c.postal, rng) if c.postal else None,
        "state": state,
    }


def _email(ascii_given: str, ascii_family: str, r: float, rng: random.Random) -> str:
    domain = EMAIL_DOMAINS[int(rng.random() * len(EMAIL_DOMAINS))]
    sep = ("", ".", "_", ".")[int(r * 400) % 4]
    local = f"{ascii_given}{sep}{ascii_family}"
    if r < 0.5:
        local += str(int(r * 10000) % 100)
    email = f"{local}@{domain}"
    if r < 0.08:  # people type capitals; Stripe keeps them
        email = email[0].upper() + email[1:] if r < 0.05 else email.upper()
    if 0.95 < r < 0.97:  # stray spaces, as imported from spreadsheets
        email = f" {email} " if r < 0.96 else f"{email} "
    return email


def _discount(customer_id: str, created: int, rng: random.Random) -> dict[str, Any]:
    percent = (10.0, 15.0, 20.0, 50.0)[int(rng.random() * 4)]
    coupon_id = "SAVE" + str(int(percent))
    return {
        "checkout_session": None,
        "coupon": {
            "amount_off": None,
            "created": created - 86400,
            "currency": None,
            "duration": "forever",
            "duration_in_months": None,
            "id": coupon_id,
            "livemode": False,
            "max_redemptions": None,
            "metadata": {},
            "name": f"{int(percent)}% off",
            "object": "coupon",
            "percent_off": percent,
            "redeem_by": None,
            "times_redeemed": 1 + int(rng.random() * 500),
            "valid": True,
        },
        "customer": customer_id,
        "end": None,
        "id": random_id("di_", rng),
        "invoice": None,
        "invoice_item": None,
        "object": "discount",
        "promotion_code": None,
        "start": created + int(rng.random() * 86400 * 30),
        "subscription": None,
        "subscription_item": None,
    }


def make_customer(
    customer_id: str, created: int, rng: random.Random, previous_email: str | None
) -> dict[str, Any]:
    """One customer; `previous_email` lets a few customers share an email address."""
    c = _WEIGHTED[int(rng.random() * len(_WEIGHTED))]
    customer = new_customer(customer_id, created, random_id("", rng, 8).upper())
    gd, ga = c.given[int(rng.random() * len(c.given))]
    fd, fa = c.family[int(rng.random() * len(c.family))]
    r = rng.random()
    if r >= 0.03:
        customer["name"] = f"{fd}{'' if r < 0.5 else ' '}{gd}" if c.family_first else f"{gd} {fd}"
    r = rng.random()
    if 0.04 <= r < 0.98 or (r >= 0.98 and previous_email is None):
        customer["email"] = _email(ga, fa, r, rng)
    elif r >= 0.98:
        customer["email"] = previous_email  # shared by two customers
    if rng.random() < 0.65:
        customer["phone"] = _fill(c.phone, rng)
    r = rng.random()
    if r < 0.88:
        customer["address"] = _address(c, rng)
        if r < 0.12:
            customer["shipping"] = {
                "address": customer["address"],
                "carrier": None,
                "name": customer["name"] or ga,
                "phone": customer["phone"],
                "tracking_number": None,
            }
    r = rng.random()
    if r < 0.08:
        customer["balance"] = int(rng.random() * 50_000) + 100
    elif r < 0.12:
        customer["balance"] = -int(rng.random() * 20_000) - 100
    if rng.random() < 0.7:
        customer["currency"] = c.currency
    r = rng.random()
    customer["preferred_locales"] = [] if r < 0.3 else [c.locale] if r < 0.9 else [c.locale, "en"]
    r = rng.random()
    if r < 0.8:
        metadata = {
            "plan": PLANS[int(r * 1000) % len(PLANS)],
            "signup_channel": CHANNELS[int(r * 10000) % len(CHANNELS)],
        }
        if r < 0.3:
            metadata["crm_id"] = str(100000 + int(rng.random() * 900000))
        customer["metadata"] = metadata
    r = rng.random()
    if r < 0.03:
        customer["discount"] = _discount(customer_id, created, rng)
    elif r < 0.08:
        customer["tax_exempt"] = "exempt"
    elif r < 0.1:
        customer["tax_exempt"] = "reverse"
    elif r < 0.2:
        customer["description"] = DESCRIPTIONS[int(r * 1000) % len(DESCRIPTIONS)]
    elif r < 0.23:
        customer["delinquent"] = True
    customer["next_invoice_sequence"] = 1 + int(rng.random() * 40)
    return customer


def populate(sandbox: Sandbox, count: int, seed: int, span_days: float) -> None:
    """Add `count` customers created over the `span_days` before the sandbox clock's now."""
    rng = random.Random(seed)
    now = sandbox.clock.now()
    span = max(1, int(span_days * 86400))
    # Sorted creation times: customers are generated oldest first, in list order.
    created = sorted(now - 1 - int(rng.random() * span) for _ in range(count))
    store = sandbox.customers
    previous_email: str | None = None
    dumps = orjson.dumps
    # Copy each rendering: orjson's buffer keeps ~8 KiB of slack per object otherwise.
    for stamp in created:
        customer_id = random_id("cus_", rng)
        while store.get(customer_id) is not None:
            customer_id = random_id("cus_", rng)
        customer = make_customer(customer_id, stamp, rng, previous_email)
        previous_email = customer["email"]
        blob = bytes(memoryview(dumps(customer)))
        store.add(Stored(customer_id, store.next_key(stamp), blob, previous_email))
