"""Deterministic, realistic customers for ``--customers N --seed S``.

The same seed and clock start give the same customers.  Generation is one pass with a
seeded `random.Random`, about 20 draws per customer, each customer rendered straight to
its JSON bytes by one ``%`` format over pre-escaped fragments (`headwater.sandbox.
fragments`); no dict is built and nothing is serialised.  The rendering has exactly the
keys, order and defaults of `headwater.sandbox.customers.new_customer`, so a customer
changed later through the API keeps its shape.  Generated customers are pre-existing:
they emit no events.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from headwater.sandbox.fragments import ALNUM, ALNUM_UPPER, FILL_WIDTH, WEIGHTED, Pack, jstr
from headwater.sandbox.geodata import CHANNELS, DESCRIPTIONS, EMAIL_DOMAINS, PLANS

if TYPE_CHECKING:
    from headwater.sandbox.service import Sandbox
    from headwater.sandbox.store import CustomerStore

_CUSTOMER = (
    b'{"id":"%s","object":"customer","address":%s,"balance":%d,"created":%d,'
    b'"currency":%s,"default_source":null,"delinquent":%s,"description":%s,'
    b'"discount":%s,"email":%s,"invoice_prefix":"%s","invoice_settings":'
    b'{"custom_fields":null,"default_payment_method":null,"footer":null,'
    b'"rendering_options":null},"livemode":false,"metadata":%s,"name":%s,'
    b'"next_invoice_sequence":%d,"phone":%s,"preferred_locales":%s,"shipping":%s,'
    b'"tax_exempt":"%s","test_clock":null}'
)
_DISCOUNT = (
    b'{"checkout_session":null,"coupon":{"amount_off":null,"created":%d,"currency":null,'
    b'"duration":"forever","duration_in_months":null,"id":"SAVE%d","livemode":false,'
    b'"max_redemptions":null,"metadata":{},"name":"%d%% off","object":"coupon",'
    b'"percent_off":%d.0,"redeem_by":null,"times_redeemed":%d,"valid":true},'
    b'"customer":"%s","end":null,"id":"di_%s","invoice":null,"invoice_item":null,'
    b'"object":"discount","promotion_code":null,"start":%d,"subscription":null,'
    b'"subscription_item":null}'
)
_SHIPPING = b'{"address":%s,"carrier":null,"name":%s,"phone":%s,"tracking_number":null}'
_PLANS = tuple(jstr(p) for p in PLANS)
_CHANNELS = tuple(jstr(c) for c in CHANNELS)
_DESCRIPTIONS = tuple(jstr(d) for d in DESCRIPTIONS)
_DOMAINS = tuple(d.encode() for d in EMAIL_DOMAINS)
_PERCENTS = (10, 15, 20, 50)
_SEPARATORS = (b"", b".", b"_", b".")
# Each customer's random characters come from one slice of a block drawn per batch:
# id, invoice prefix, discount id, phone, postal code.
_ID, _PREFIX, _DISCOUNT_ID, _PHONE, _POSTAL = 0, 14, 22, 36, 36 + FILL_WIDTH
RAW = _POSTAL + FILL_WIDTH
_BATCH = 4096


def _address(p: Pack, raw: bytes, rand: Callable[[], float]) -> bytes:
    opening, closing = p.cities[int(rand() * len(p.cities))]
    street = p.streets[int(rand() * len(p.streets))]
    r = rand()
    line2 = b'"Apt %d"' % (1 + int(r * 9000) % 60) if r < 0.15 else b"null"
    postal = b"null" if p.postal is None else p.postal.fill(raw[_POSTAL:])
    return b'%s%s","line2":%s,"postal_code":%s,%s' % (
        opening,
        street % (1 + int(r * 240)),
        line2,
        postal,
        closing,
    )


def _email(given: bytes, family: bytes, r: float, rand: Callable[[], float]) -> bytes:
    domain = _DOMAINS[int(rand() * len(_DOMAINS))]
    sep = _SEPARATORS[int(r * 400) % 4]
    if r < 0.5:
        email = b"%s%s%s%d@%s" % (given, sep, family, int(r * 10000) % 100, domain)
    else:
        email = b"%s%s%s@%s" % (given, sep, family, domain)
    if r < 0.08:  # people type capitals; Stripe keeps them
        email = email[:1].upper() + email[1:] if r < 0.05 else email.upper()
    if 0.95 < r < 0.97:  # stray spaces, as imported from spreadsheets
        return b'" %s "' % email if r < 0.96 else b'"%s "' % email
    return b'"%s"' % email  # ASCII letters, digits, . _ @ and spaces: no escaping


def _discount(customer_id: bytes, created: int, raw: bytes, rand: Callable[[], float]) -> bytes:
    percent = _PERCENTS[int(rand() * 4)]
    redeemed = 1 + int(rand() * 500)
    discount_id = raw[_DISCOUNT_ID : _DISCOUNT_ID + 14].translate(ALNUM)
    start = created + int(rand() * 86400 * 30)
    return _DISCOUNT % (
        created - 86400,
        percent,
        percent,
        percent,
        redeemed,
        customer_id,
        discount_id,
        start,
    )


def _metadata(rand: Callable[[], float]) -> bytes:
    r = rand()
    if r >= 0.8:
        return b"{}"
    plan = _PLANS[int(r * 1000) % len(_PLANS)]
    channel = _CHANNELS[int(r * 10000) % len(_CHANNELS)]
    if r >= 0.3:
        return b'{"plan":%s,"signup_channel":%s}' % (plan, channel)
    crm_id = 100000 + int(rand() * 900000)
    return b'{"plan":%s,"signup_channel":%s,"crm_id":"%d"}' % (plan, channel, crm_id)


def _balance(rand: Callable[[], float]) -> int:
    r = rand()
    if r < 0.08:
        return int(rand() * 50_000) + 100
    if r < 0.12:
        return -int(rand() * 20_000) - 100
    return 0


def render_customer(
    customer_id: bytes, created: int, raw: bytes, rand: Callable[[], float], shared: bytes | None
) -> tuple[bytes, bytes]:
    """One customer's JSON and its email as JSON (``null`` when it has none).

    `raw` is `RAW` random bytes for the customer's random characters, `rand` the seeded
    float source, and `shared` an email (JSON) that a few customers take over.
    """
    p = WEIGHTED[int(rand() * len(WEIGHTED))]
    g, f = int(rand() * len(p.given)), int(rand() * len(p.family))
    r = rand()
    name = b"null" if r < 0.03 else p.names[g][f][r < 0.5]
    r = rand()
    if 0.04 <= r < 0.98 or (r >= 0.98 and shared is None):
        email = _email(p.given[g], p.family[f], r, rand)
    else:
        email = b"null" if r < 0.04 or shared is None else shared
    phone = p.phone.fill(raw[_PHONE:]) if rand() < 0.65 else b"null"
    address = shipping = b"null"
    r = rand()
    if r < 0.88:
        address = _address(p, raw, rand)
        if r < 0.12:
            to = b'"%s"' % p.given[g] if name == b"null" else name
            shipping = _SHIPPING % (address, to, phone)
    balance = _balance(rand)
    currency = p.currency if rand() < 0.7 else b"null"
    r = rand()
    locales = b"[]" if r < 0.3 else p.locales[0] if r < 0.9 else p.locales[1]
    metadata = _metadata(rand)
    discount, description, delinquent, tax_exempt = b"null", b"null", b"false", b"none"
    r = rand()
    if r < 0.03:
        discount = _discount(customer_id, created, raw, rand)
    elif r < 0.1:
        tax_exempt = b"exempt" if r < 0.08 else b"reverse"
    elif r < 0.2:
        description = _DESCRIPTIONS[int(r * 1000) % len(_DESCRIPTIONS)]
    elif r < 0.23:
        delinquent = b"true"
    blob = _CUSTOMER % (
        customer_id,
        address,
        balance,
        created,
        currency,
        delinquent,
        description,
        discount,
        email,
        raw[_PREFIX : _PREFIX + 8].translate(ALNUM_UPPER),
        metadata,
        name,
        1 + int(rand() * 40),
        phone,
        locales,
        shipping,
        tax_exempt,
    )
    return blob, email


def populate(sandbox: Sandbox, count: int, seed: int, span_days: float) -> None:
    """Add `count` customers created over the `span_days` before the sandbox clock's now,
    and not before the Unix epoch: Stripe has no customer with a negative `created`
    (a clock started early in 1970 narrows the span to the seconds since then)."""
    rng = random.Random(seed)
    rand = rng.random
    now = sandbox.clock.now()
    span = max(1, min(int(span_days * 86400), now))
    # Sorted creation times: customers are generated oldest first, in list order.
    created = sorted([max(0, now - 1 - int(rand() * span)) for _ in range(count)])
    store = sandbox.customers
    shared: bytes | None = None
    for base in range(0, count, _BATCH):
        stamps = created[base : base + _BATCH]
        block = rng.randbytes(RAW * len(stamps))
        offsets = range(0, len(block), RAW)
        ids = _unique_ids(block.translate(ALNUM), offsets, store, rng)
        blobs: list[bytes] = []
        append = blobs.append
        for raw_id, stamp, offset in zip(ids, stamps, offsets, strict=True):
            blob, email = render_customer(raw_id, stamp, block[offset : offset + RAW], rand, shared)
            shared = None if email == b"null" else email
            append(blob)
        store.extend([raw_id.decode() for raw_id in ids], stamps, blobs)


def _unique_ids(
    chars: bytes, offsets: range, store: CustomerStore, rng: random.Random
) -> list[bytes]:
    """A batch's customer ids; a clash (odds ~1e-17 per pair) draws a fresh id."""
    ids = [b"cus_" + chars[o + _ID : o + _ID + 14] for o in offsets]
    if len(set(ids)) == len(ids) and store.isdisjoint(i.decode() for i in ids):
        return ids
    seen: set[bytes] = set()
    for n, raw_id in enumerate(ids):
        while raw_id in seen or raw_id.decode() in store:
            raw_id = b"cus_" + rng.randbytes(14).translate(ALNUM)
        ids[n] = raw_id
        seen.add(raw_id)
    return ids
