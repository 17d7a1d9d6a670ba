"""Filter operators: where each applies, how many values it takes, and its predicate.

Null and missing semantics (the same for every operator):

- A missing key and an explicit ``null`` both read as "no value", except for
  ``exists`` / ``does not exist``, which test whether the key is present at all
  (``exists`` is true for a present key holding ``null``).  A path through a
  missing or null object (``address.city`` when ``address`` is null) is missing.
- ``is null`` is true for null *and* missing; ``is not null`` is its complement.
- Every positive comparison (``is``, ``is less than``, ``contains``, ``is after``,
  ``is one of``, ``is true``...) is false when there is no value, and false when the
  record holds a value of an unexpected type.
- Each negative operator (``is not``, ``is not one of``, ``does not contain``,
  ``is not between``, ``is not empty``...) is the exact complement of its positive
  counterpart, so a customer without a country matches ``address.country is not "IT"``.
- ``is empty`` is true for no value, ``""``, ``[]`` and ``{}``.
- A date value (``2024-01-01``) stands for that whole UTC day; a datetime for an
  instant (no offset means UTC).  Timestamps compare as instants.

Equality is the same everywhere (``is``, ``is one of``, an array's ``contains``):
strings equal only strings, booleans only booleans (``true`` is never ``1``), and
numbers compare by value whether integer or float (``1`` is ``1.0``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from headwater.adapters.transformations.filters.values import Moment
from headwater.kernel.records import Record
from headwater.kernel.schema import Kind

Getter = Callable[[Record], Any]
Predicate = Callable[[Record], bool]
Builder = Callable[[Getter, list[Any]], Predicate]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_NUM = (int, float)  # exact types: ``type(True) is bool`` keeps booleans out


@dataclass(frozen=True)
class Operator:
    name: str
    kinds: frozenset[Kind]
    arity: int  # number of values; -1 means one or more
    build: Builder
    negates: str | None = None  # built as "not <that operator>"
    element: bool = False  # values are substrings / array elements


def _eq(g: Getter, vals: list[Any]) -> Predicate:
    x = vals[0]
    if isinstance(x, Moment):
        return _day_or_instant(g, x)
    if isinstance(x, bool):
        return lambda r: g(r) is x
    if isinstance(x, str):
        return lambda r: g(r) == x
    return lambda r: type(v := g(r)) in _NUM and v == x


def _day_or_instant(g: Getter, m: Moment) -> Predicate:
    lo, hi, incl = m.lo, m.hi, m.hi_inclusive
    if incl:
        return lambda r: type(v := g(r)) in _NUM and v == lo
    return lambda r: type(v := g(r)) in _NUM and lo <= v < hi


def _in(g: Getter, vals: list[Any]) -> Predicate:
    allowed = frozenset(vals)
    if all(isinstance(v, str) for v in vals):
        return lambda r: type(v := g(r)) is str and v in allowed
    return lambda r: type(v := g(r)) in _NUM and v in allowed


def _order(test: Callable[[Any, Any], bool]) -> Builder:
    def build(g: Getter, vals: list[Any]) -> Predicate:
        x = vals[0]
        return lambda r: type(v := g(r)) in _NUM and test(v, x)

    return build


def _lt(g: Getter, vals: list[Any]) -> Predicate:
    x = vals[0]
    return lambda r: type(v := g(r)) in _NUM and v < x


def _gt(g: Getter, vals: list[Any]) -> Predicate:
    x = vals[0]
    return lambda r: type(v := g(r)) in _NUM and v > x


def _between(g: Getter, vals: list[Any]) -> Predicate:
    a, b = vals
    if isinstance(a, Moment):
        lo = a.lo
        before_end = _on_or_before(g, [b])
        return lambda r: type(v := g(r)) in _NUM and v >= lo and before_end(r)
    return lambda r: type(v := g(r)) in _NUM and a <= v <= b


def empty_range(low: Any, high: Any) -> bool:
    """Whether ``is between low and high`` can hold for no value: the bounds are
    reversed (a date covers its day, so noon of a day to that day is a range)."""
    if isinstance(low, Moment) and isinstance(high, Moment):
        return low.lo > high.hi or (low.lo == high.hi and not high.hi_inclusive)
    return bool(low > high)


def _before(g: Getter, vals: list[Any]) -> Predicate:
    lo = vals[0].lo
    return lambda r: type(v := g(r)) in _NUM and v < lo


def _on_or_after(g: Getter, vals: list[Any]) -> Predicate:
    lo = vals[0].lo
    return lambda r: type(v := g(r)) in _NUM and v >= lo


def _on_or_before(g: Getter, vals: list[Any]) -> Predicate:
    m: Moment = vals[0]
    hi = m.hi
    if m.hi_inclusive:
        return lambda r: type(v := g(r)) in _NUM and v <= hi
    return lambda r: type(v := g(r)) in _NUM and v < hi


def _after(g: Getter, vals: list[Any]) -> Predicate:
    m: Moment = vals[0]
    hi = m.hi
    if m.hi_inclusive:
        return lambda r: type(v := g(r)) in _NUM and v > hi
    return lambda r: type(v := g(r)) in _NUM and v >= hi


def _itself(value: Any) -> Any:
    return value


def _contains(g: Getter, vals: list[Any]) -> Predicate:
    x = vals[0]
    if isinstance(x, str):  # a substring, or an element equal to it (only a string is)
        return lambda r: type(v := g(r)) in (str, list) and x in v
    # An element of any other type matches as `is` matches it: Python's ``in`` would
    # take ``True == 1`` and ``False == 0``, and a date for no timestamp at all.
    element = _eq(_itself, [x])
    return lambda r: type(v := g(r)) is list and any(element(e) for e in v)


def _starts(g: Getter, vals: list[Any]) -> Predicate:
    x = vals[0]
    return lambda r: type(v := g(r)) is str and v.startswith(x)


def _ends(g: Getter, vals: list[Any]) -> Predicate:
    x = vals[0]
    return lambda r: type(v := g(r)) is str and v.endswith(x)


def _is_true(g: Getter, _vals: list[Any]) -> Predicate:
    return lambda r: g(r) is True


def _is_false(g: Getter, _vals: list[Any]) -> Predicate:
    return lambda r: g(r) is False


def _is_empty(g: Getter, _vals: list[Any]) -> Predicate:
    empty = (None, MISSING, "")
    return lambda r: (v := g(r)) in empty or (type(v) in (list, dict) and not v)


def _is_null(g: Getter, _vals: list[Any]) -> Predicate:
    return lambda r: (v := g(r)) is None or v is MISSING


def _exists(g: Getter, _vals: list[Any]) -> Predicate:
    return lambda r: g(r) is not MISSING


_ANY = frozenset(Kind)
_EQUALITY = frozenset({Kind.STRING, Kind.INTEGER, Kind.NUMBER, Kind.BOOLEAN, Kind.TIMESTAMP})
_NUMBERS = frozenset({Kind.INTEGER, Kind.NUMBER})
_RANGE = frozenset({Kind.INTEGER, Kind.NUMBER, Kind.TIMESTAMP})
_LISTABLE = frozenset({Kind.STRING, Kind.INTEGER, Kind.NUMBER})
_TEXT = frozenset({Kind.STRING})
_CONTAINERS = frozenset({Kind.STRING, Kind.ARRAY})
_EMPTIABLE = frozenset({Kind.STRING, Kind.ARRAY, Kind.MAP, Kind.OBJECT, Kind.JSON})
_TIME = frozenset({Kind.TIMESTAMP})
_BOOL = frozenset({Kind.BOOLEAN})


def _ops() -> dict[str, Operator]:
    table = [
        Operator("is", _EQUALITY, 1, _eq),
        Operator("is not", _EQUALITY, 1, _eq, negates="is"),
        Operator("is less than", _NUMBERS, 1, _lt),
        Operator("is less than or equal to", _NUMBERS, 1, _order(lambda v, x: v <= x)),
        Operator("is greater than", _NUMBERS, 1, _gt),
        Operator("is greater than or equal to", _NUMBERS, 1, _order(lambda v, x: v >= x)),
        Operator("is between", _RANGE, 2, _between),
        Operator("is not between", _RANGE, 2, _between, negates="is between"),
        Operator("is one of", _LISTABLE, -1, _in),
        Operator("is not one of", _LISTABLE, -1, _in, negates="is one of"),
        Operator("contains", _CONTAINERS, 1, _contains, element=True),
        Operator("does not contain", _CONTAINERS, 1, _contains, "contains", element=True),
        Operator("starts with", _TEXT, 1, _starts, element=True),
        Operator("ends with", _TEXT, 1, _ends, element=True),
        Operator("is before", _TIME, 1, _before),
        Operator("is on or before", _TIME, 1, _on_or_before),
        Operator("is after", _TIME, 1, _after),
        Operator("is on or after", _TIME, 1, _on_or_after),
        Operator("is true", _BOOL, 0, _is_true),
        Operator("is false", _BOOL, 0, _is_false),
        Operator("is empty", _EMPTIABLE, 0, _is_empty),
        Operator("is not empty", _EMPTIABLE, 0, _is_empty, negates="is empty"),
        Operator("is null", _ANY, 0, _is_null),
        Operator("is not null", _ANY, 0, _is_null, negates="is null"),
        Operator("exists", _ANY, 0, _exists),
        Operator("does not exist", _ANY, 0, _exists, negates="exists"),
    ]
    return {op.name: op for op in table}


#: Every operator of DESIGN.md §5, by name.
OPERATORS: dict[str, Operator] = _ops()


def operators_for(kind: Kind) -> list[str]:
    """Names of the operators that apply to a property of `kind`, in table order."""
    return [op.name for op in OPERATORS.values() if kind in op.kinds]


def build(op: Operator, getter: Getter, values: list[Any]) -> Predicate:
    """The predicate of one condition; negative operators complement the positive one."""
    positive = op.build(getter, values)
    if op.negates is None:
        return positive
    return lambda r: not positive(r)
