"""Normalisation of identifier values: the form in which they are compared.

A string is trimmed (of `TRIMMED` only) and lower-cased; an empty string is null.  An
integer stays an integer (a boolean or any other type is null: it cannot identify).
A blocked value is null *for linking*: the identity keeps its value, it only never
links through it.  The warehouse compares the very same keys: the write path stores
`normalise`'s output beside each row (docs/identity.md), so SQL never has to
reproduce Python's lower-casing.
"""

from __future__ import annotations

from typing import Any

from headwater.kernel.model import PropertyType
from headwater.services.identity.settings import TRIMMED, Identifier, IdentitySettings

#: A normalised identifier value.
Key = str | int


def normalise(value: Any, identifier: Identifier) -> Key | None:
    """The comparison key of `value` for `identifier`, or ``None`` when it cannot link."""
    key: Key
    if identifier.type is PropertyType.INTEGER:
        if type(value) is not int:  # bool is not an identifier; nor is a float
            return None
        key = value
    else:
        if not isinstance(value, str):
            return None
        key = value.strip(TRIMMED).lower()
        if not key:
            return None
        pattern = identifier.blocked_pattern
        if pattern is not None and pattern.match(key):
            return None
    if key in identifier.blocked_exact:
        return None
    return key


def identifier_keys(values: Any, settings: IdentitySettings) -> tuple[Key | None, ...]:
    """The normalised keys of one identity's values (a mapping by column), in order."""
    return tuple(normalise(values.get(i.column), i) for i in settings.identifiers)
