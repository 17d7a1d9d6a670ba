"""Static types of mapping expressions and which Customer Model types they convert to."""

from __future__ import annotations

from enum import StrEnum

from headwater.kernel.model import PropertyType
from headwater.kernel.schema import FieldType, Kind


class T(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"  # integer unix seconds from the source
    DATETIME = "datetime"
    DATE = "date"
    ARRAY = "array"
    OBJECT = "object"
    ANY = "any"  # only known at run time
    NULL = "null"


NUMERIC = frozenset({T.INTEGER, T.NUMBER, T.TIMESTAMP})
TEMPORAL = frozenset({T.DATETIME, T.DATE})
SCALAR = frozenset({T.STRING, T.BOOLEAN, *NUMERIC, *TEMPORAL})

_FROM_KIND = {
    Kind.STRING: T.STRING,
    Kind.INTEGER: T.INTEGER,
    Kind.NUMBER: T.NUMBER,
    Kind.BOOLEAN: T.BOOLEAN,
    Kind.TIMESTAMP: T.TIMESTAMP,
    Kind.OBJECT: T.OBJECT,
    Kind.MAP: T.OBJECT,
    Kind.ARRAY: T.ARRAY,
    Kind.JSON: T.ANY,
}


def of_field(ft: FieldType) -> T:
    return _FROM_KIND[ft.kind]


def unify(types: list[T]) -> T:
    """The type of a value that is one of `types` (coalesce, if)."""
    known = {t for t in types if t is not T.NULL}
    if not known:
        return T.NULL
    if len(known) == 1:
        return known.pop()
    if known <= NUMERIC:
        return T.NUMBER
    return T.ANY


_P = PropertyType
_NUMBERISH = frozenset(
    {_P.STRING, _P.INTEGER, _P.FLOAT, _P.DECIMAL, _P.BOOLEAN, _P.DATETIME, _P.DATE, _P.JSON}
)

#: Customer Model types a value of each static type can convert to (`kernel.model.convert`).
CONVERTS_TO: dict[T, frozenset[PropertyType]] = {
    T.STRING: _NUMBERISH,
    T.INTEGER: _NUMBERISH,
    T.NUMBER: _NUMBERISH,
    T.TIMESTAMP: _NUMBERISH,
    T.BOOLEAN: frozenset({_P.STRING, _P.BOOLEAN, _P.JSON}),
    T.DATETIME: frozenset({_P.STRING, _P.DATETIME, _P.DATE}),
    T.DATE: frozenset({_P.STRING, _P.DATETIME, _P.DATE}),
    T.ARRAY: frozenset({_P.ARRAY, _P.JSON}),
    T.OBJECT: frozenset({_P.JSON, _P.OBJECT}),
    T.ANY: frozenset(PropertyType),
    T.NULL: frozenset(PropertyType),
}


def article(t: T | str) -> str:
    text = str(t)
    return ("an " if text[0] in "aeiou" else "a ") + text
