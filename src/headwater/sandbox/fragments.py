"""Pre-escaped JSON fragments for generated customers, compiled once from `geodata`.

Generation renders each customer with one bytes ``%`` format over these fragments, so
nothing per customer is escaped, looked up by name or turned into a dict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from headwater.sandbox.geodata import COUNTRIES, Country
from headwater.sandbox.ids import ALPHABET

# Byte -> character tables: random bytes become ids, digits and letters in one C call.
ALNUM = bytes(ord(ALPHABET[b % 62]) for b in range(256))
ALNUM_UPPER = ALNUM.upper()
_DIGIT = bytes(ord("0123456789"[b % 10]) for b in range(256))
_LETTER = bytes(ord("ABCDEFGHJKLMNPRSTUVWXYZ"[b % 23]) for b in range(256))
FILL_WIDTH = 16  # the most random characters a phone or postal pattern may take
_ASCII_WORD = re.compile(r"[a-z0-9]+")


def jstr(text: str) -> bytes:
    """`text` as a quoted JSON string."""
    return orjson.dumps(text)


def _literal(text: str) -> bytes:
    """`text` JSON-escaped (no quotes) and safe inside a bytes ``%`` template."""
    return jstr(text)[1:-1].replace(b"%", b"%%")


class Filler:
    """A pattern (``#`` a random digit, ``A`` a random capital) as a quoted JSON string."""

    __slots__ = ("letters", "template", "width")

    def __init__(self, pattern: str) -> None:
        parts = [b"%c" if ch in "#A" else _literal(ch) for ch in pattern]
        self.template = b'"' + b"".join(parts) + b'"'
        kinds = [ch == "A" for ch in pattern if ch in "#A"]
        if len(kinds) > FILL_WIDTH:
            raise ValueError(f"pattern {pattern!r} has more than {FILL_WIDTH} random characters")
        self.width = len(kinds)
        self.letters: tuple[bool, ...] | None = tuple(kinds) if any(kinds) else None

    def fill(self, raw: bytes) -> bytes:
        """The pattern filled from `raw`, random bytes at least `width` long."""
        digits = raw[: self.width].translate(_DIGIT)
        if self.letters is None:
            return self.template % tuple(digits)  # bytes iterate as ints, which %c takes
        letters = raw[: self.width].translate(_LETTER)
        picked = [
            c if is_letter else d
            for is_letter, d, c in zip(self.letters, digits, letters, strict=True)
        ]
        return self.template % tuple(picked)


@dataclass(frozen=True, slots=True)
class Pack:
    """One country's fragments.

    ``cities`` pairs the opening of an address up to ``"line1":"`` with its closing
    ``"state":...}``; ``streets`` are line-1 templates taking the house number.
    """

    cities: tuple[tuple[bytes, bytes], ...]
    streets: tuple[bytes, ...]
    postal: Filler | None
    phone: Filler
    # names[given][family]: the JSON name, and its variant without a space (CJK).
    names: tuple[tuple[tuple[bytes, bytes], ...], ...]
    given: tuple[bytes, ...]  # ASCII forms, for email local parts
    family: tuple[bytes, ...]
    currency: bytes
    locales: tuple[bytes, bytes]


def _names(c: Country, given: str, family: str) -> tuple[bytes, bytes]:
    if c.family_first:
        return jstr(f"{family} {given}"), jstr(f"{family}{given}")
    return (jstr(f"{given} {family}"),) * 2


def _pack(c: Country) -> Pack:
    for _, ascii_form in c.given + c.family:
        if not _ASCII_WORD.fullmatch(ascii_form):  # email local parts are never escaped
            raise ValueError(f"{c.code}: ASCII name form {ascii_form!r} is not [a-z0-9]+")
    cities = tuple(
        (
            b'{"city":%s,"country":%s,"line1":"' % (jstr(city), jstr(c.code)),
            b'"state":%s}' % (b"null" if state is None else jstr(state)),
        )
        for city, state in c.cities
    )
    streets = tuple(
        _literal(c.street_format.format(n="\0", street=street)).replace(b"\\u0000", b"%d")
        for street in c.streets
    )
    return Pack(
        cities,
        streets,
        Filler(c.postal) if c.postal else None,
        Filler(c.phone),
        tuple(tuple(_names(c, given, family) for family, _ in c.family) for given, _ in c.given),
        tuple(ascii_form.encode() for _, ascii_form in c.given),
        tuple(ascii_form.encode() for _, ascii_form in c.family),
        jstr(c.currency),
        (orjson.dumps([c.locale]), orjson.dumps([c.locale, "en"])),
    )


# Countries repeated by weight, so one uniform draw picks a weighted country.
WEIGHTED: tuple[Pack, ...] = tuple(p for c in COUNTRIES for p in [_pack(c)] * c.weight)
