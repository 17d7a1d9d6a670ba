"""What the warehouse needs to key and rebuild set-based: the rules as data, the guard.

`key_spec` turns the settings into the warehouse's `KeySpec`: per identifier its
column, type, normalised blocked values, wildcard values as LIKE patterns, and
`normalise` itself for the values SQL cannot lower-case exactly; plus a fingerprint of
the settings (a warehouse keyed with other settings is rebuilt).  `guard` is the
ordered-links rule of `components`, applied to the few link components the warehouse
finds holding two or more first-identifier values.
"""

from __future__ import annotations

import functools
import hashlib

import orjson

from headwater.adapters.warehouse.identity_keys import KeyRule, KeySpec
from headwater.adapters.warehouse.identity_rebuild import Guard, Member
from headwater.kernel.model import PropertyType
from headwater.services.identity.components import partition
from headwater.services.identity.normalise import normalise
from headwater.services.identity.records import Identity, IdentityKey
from headwater.services.identity.settings import TRIMMED, Identifier, IdentitySettings


def like_pattern(wildcard: str) -> str:
    """A blocked wildcard value (``noreply@*``, normalised) as a LIKE pattern."""
    escaped = [
        p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for p in wildcard.split("*")
    ]
    return "%".join(escaped)


def _rule(identifier: Identifier) -> KeyRule:
    integer = identifier.type is PropertyType.INTEGER
    patterns: list[str] = []
    if not integer:
        for raw in identifier.blocked:
            text = raw.strip(TRIMMED).lower()
            if "*" in text:
                patterns.append(like_pattern(text))
    return KeyRule(
        identifier.column,
        integer,
        tuple(sorted(identifier.blocked_exact, key=str)),
        tuple(patterns),
        functools.partial(_normalise, identifier=identifier),
    )


def _normalise(value: object, identifier: Identifier) -> str | int | None:
    return normalise(value, identifier)


#: The version of `normalise`'s rule, in every fingerprint: keys made by another rule
#: are stale (2: whitespace other than ASCII's is trimmed too).
NORMALISATION = 2


def key_spec(settings: IdentitySettings) -> KeySpec:
    """The settings as the warehouse's key rules, with their fingerprint."""
    columns = [i.column for i in settings.identifiers]
    stored = {**settings.as_dict(), "columns": columns, "normalisation": NORMALISATION}
    digest = hashlib.sha256(orjson.dumps(stored, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return KeySpec(tuple(_rule(i) for i in settings.identifiers), digest[:32])


def guard(members: list[Member]) -> list[list[int]]:
    """The profiles of one link component (members sorted by identity key), as lists
    of the members' numbers: `components.partition`, the rule of docs/identity.md §4."""
    identities = [
        Identity(IdentityKey(m.pipeline_id, m.source_id), m.connection_id, None, {})
        for m in members
    ]
    parts = partition(identities, [m.keys for m in members])
    return [[members[i].n for i in part] for part in parts]


#: `guard` as the warehouse's `Guard` type.
GUARD: Guard = guard
