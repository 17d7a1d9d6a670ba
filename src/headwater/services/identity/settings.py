"""A workspace's identifier settings: which properties identify a customer, in what order.

Identifiers are Customer Model leaf properties of type ``string`` or ``integer``, in
order of trust (the first one decides when two identities both have it, DESIGN §10).
Each identifier has a list of blocked values: placeholders that many unrelated
customers share (``test@example.com``, ``n/a``) and that must never link anyone.

Blocked values are written as users type them; they are normalised like the values
they are compared with (trimmed, case-insensitive).  A ``*`` in a blocked value of a
string identifier matches any run of characters (``noreply@*`` blocks every
``noreply@`` address).  Giving a blocked list for an identifier *replaces* its
defaults, so a user can drop a default that is a real value in their business;
`default_blocked` says what the defaults are, for a user interface to show.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from headwater.kernel.errors import InvalidInput
from headwater.kernel.model import CustomerModel, PropertyType
from headwater.services.text import refuse_nul, refuse_surrogate

#: Characters trimmed from both ends of a string value.  The ASCII ones are a fixed set,
#: not Python's notion of whitespace (which has ``\x1c``-``\x1f`` too), so that the
#: warehouse applies exactly the same trim in SQL (``btrim(x, chars)`` on PostgreSQL,
#: ``trim(x, chars)`` on DuckDB) to the ASCII values it keys; every other whitespace
#: character (no-break space, ideographic space, ...) is trimmed as well: only Python keys
#: the values holding one (they are not ASCII).  A value of such spaces alone linked
#: every customer holding it into one profile.
TRIMMED = (
    " \t\n\r\x0b\x0c"
    "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)

#: Placeholders that mean "no value" for any string identifier.
GENERIC_PLACEHOLDERS = (
    "-",
    "--",
    ".",
    "?",
    "0",
    "n/a",
    "na",
    "nil",
    "none",
    "null",
    "test",
    "undefined",
    "unknown",
)

#: Email placeholders: test addresses and no-reply senders shared by many customers.
EMAIL_PLACEHOLDERS = (
    "test@example.com",
    "test@test.com",
    "email@example.com",
    "user@example.com",
    "noreply@*",
    "no-reply@*",
    "no_reply@*",
    "donotreply@*",
    "do-not-reply@*",
)

#: Integer placeholders ("no customer number").
INTEGER_PLACEHOLDERS = ("0", "-1")

IDENTIFIER_TYPES = (PropertyType.STRING, PropertyType.INTEGER)
DEFAULT_IDENTIFIERS = ("email",)


def default_blocked(path: str, ptype: PropertyType) -> tuple[str, ...]:
    """The blocked values an identifier gets when none are given for it."""
    if ptype is PropertyType.INTEGER:
        return INTEGER_PLACEHOLDERS
    if path.rsplit(".", 1)[-1].endswith("email"):  # email, work_email, contact.email
        return GENERIC_PLACEHOLDERS + EMAIL_PLACEHOLDERS
    return GENERIC_PLACEHOLDERS


#: Blocked values per identifier, and characters per value: a list is for placeholders.
MOST_BLOCKED = 10_000
LONGEST_BLOCKED = 500
#: The range of the warehouse's integer identifier keys (BIGINT).
INT64 = range(-(2**63), 2**63)


@dataclass(frozen=True)
class Wildcards:
    """Blocked values with ``*`` (any run of characters), matched in linear time: each
    is its literal parts, found one after the other (a regular expression of several
    ``.*`` backtracked exponentially on a value that almost matched)."""

    parts: tuple[tuple[str, ...], ...]

    def match(self, key: str) -> bool:
        # Most keys start with no pattern's first part: one call rejects them (at a
        # thousand changed identities, matching each pattern in turn was a third of the
        # resolution's Python time).
        return key.startswith(self._firsts) and any(_glob(parts, key) for parts in self.parts)

    @cached_property
    def _firsts(self) -> tuple[str, ...]:
        return tuple(parts[0] for parts in self.parts)


def _glob(parts: tuple[str, ...], key: str) -> bool:
    """Whether `key` is ``parts[0] * parts[1] * ... * parts[-1]``."""
    first, *middle, last = parts
    if len(key) < len(first) + len(last) or not key.startswith(first):
        return False
    if not key.endswith(last):
        return False
    at, end = len(first), len(key) - len(last)
    for part in middle:
        found = key.find(part, at, end)
        if found < 0:
            return False
        at = found + len(part)
    return True


@dataclass(frozen=True)
class Identifier:
    """One identifier: its property path, column, type and normalised blocked values.

    `blocked_exact` holds normalised values (``str`` or ``int``); `blocked_pattern`
    matches the wildcard entries, or is ``None``.
    """

    path: str
    column: str
    type: PropertyType
    blocked: tuple[str, ...]  # as given (for display and storage)
    blocked_exact: frozenset[str | int]
    blocked_pattern: Wildcards | None


@dataclass(frozen=True)
class IdentitySettings:
    """Ordered identifiers of a workspace; build it with `identity_settings`."""

    identifiers: tuple[Identifier, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(i.path for i in self.identifiers)

    def as_dict(self) -> dict[str, Any]:
        """The stored form: ``{"identifiers": [...], "blocked": {path: [...]}}``."""
        return {
            "identifiers": list(self.names),
            "blocked": {i.path: list(i.blocked) for i in self.identifiers},
        }


def identity_settings(
    model: CustomerModel,
    identifiers: Sequence[str] = DEFAULT_IDENTIFIERS,
    blocked: Mapping[str, Sequence[str | int]] | None = None,
) -> IdentitySettings:
    """Validate identifiers (and blocked values) against a Customer Model.

    Raises `InvalidInput` located at ``identifiers[i]`` or ``blocked.<path>[j]``.
    """
    if isinstance(identifiers, str) or not isinstance(identifiers, Sequence):
        raise InvalidInput("a list of property paths is expected", "identifiers")
    if not identifiers:
        raise InvalidInput("at least one identifier is needed", "identifiers")
    blocked = {} if blocked is None else blocked
    if not isinstance(blocked, Mapping):
        raise InvalidInput("an object {identifier: [values]} is expected", "blocked")
    seen: set[str] = set()
    out: list[Identifier] = []
    for i, path in enumerate(identifiers):
        where = f"identifiers[{i}]"
        ptype, column = _leaf(model, path, where)
        if path in seen:
            raise InvalidInput(f"{path!r} is listed twice", where)
        seen.add(path)
        given = blocked.get(path)
        values = default_blocked(path, ptype) if given is None else _values(given, path)
        out.append(_identifier(path, column, ptype, values))
    for path in blocked:
        if path not in seen:
            raise InvalidInput(f"{path!r} is not one of the identifiers", f"blocked.{path}")
    return IdentitySettings(tuple(out))


def settings_from_dict(model: CustomerModel, data: Mapping[str, Any]) -> IdentitySettings:
    """Read the stored form back (validated again: the model may have changed)."""
    if not isinstance(data, Mapping):
        raise InvalidInput("identity settings must be an object")
    return identity_settings(
        model, data.get("identifiers", DEFAULT_IDENTIFIERS), data.get("blocked") or {}
    )


def _leaf(model: CustomerModel, path: Any, where: str) -> tuple[PropertyType, str]:
    if not isinstance(path, str) or not path:
        raise InvalidInput("an identifier is a Customer Model property path", where)
    column = model.column(path)
    if column is None:
        found = model.find(path)
        if found is not None:  # an object property: not a single value
            raise InvalidInput(
                f"{path!r} is an object; name one of its properties ({path}.…)", where
            )
        raise InvalidInput(f"{path!r} is not a Customer Model property", where)
    if column.type not in IDENTIFIER_TYPES:
        raise InvalidInput(
            f"{path!r} is of type {column.type.value}; identifiers must be string or integer",
            where,
        )
    return column.type, column.name


def _values(given: Any, path: str) -> tuple[str, ...]:
    if isinstance(given, str) or not isinstance(given, Sequence):
        raise InvalidInput("a list of values is expected", f"blocked.{path}")
    out: list[str] = []
    for j, value in enumerate(given):
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidInput("a blocked value is a string or an integer", f"blocked.{path}[{j}]")
        out.append(str(value))
    return tuple(out)


def _identifier(path: str, column: str, ptype: PropertyType, values: Sequence[str]) -> Identifier:
    exact: set[str | int] = set()
    patterns: list[tuple[str, ...]] = []
    if len(values) > MOST_BLOCKED:
        raise InvalidInput(f"at most {MOST_BLOCKED:,} blocked values", f"blocked.{path}")
    for j, raw in enumerate(values):
        where = f"blocked.{path}[{j}]"
        # No warehouse can be sent such text (PostgreSQL's failed every rebuild after).
        text = refuse_surrogate(refuse_nul(raw, where), where).strip(TRIMMED)
        if not text:
            raise InvalidInput(
                "an empty blocked value blocks nothing (empty is already null)", where
            )
        if len(text) > LONGEST_BLOCKED:
            raise InvalidInput(f"at most {LONGEST_BLOCKED} characters", where)
        if ptype is PropertyType.INTEGER:
            exact.add(_integer(raw, text, where))
        elif "*" in text:
            if text.strip("*") == "":
                raise InvalidInput(f"{raw!r} would block every value", where)
            patterns.append(tuple(text.lower().split("*")))
        else:
            exact.add(text.lower())
    pattern = Wildcards(tuple(patterns)) if patterns else None
    return Identifier(path, column, ptype, tuple(values), frozenset(exact), pattern)


def _integer(raw: str, text: str, where: str) -> int:
    """A blocked integer: ASCII digits (``int`` also takes ``1_000`` and other
    scripts' digits), within the warehouse's BIGINT keys (a larger one failed every
    rebuild after it was saved)."""
    if re.fullmatch(r"[+-]?[0-9]+", text) is None:
        raise InvalidInput(f"{raw!r} is not an integer", where)
    value = int(text)
    if value not in INT64:
        raise InvalidInput(f"{raw!r} is out of range (a 64-bit integer)", where)
    return value
