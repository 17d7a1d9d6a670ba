"""Typing of filter values from the property they are compared with."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from headwater.kernel.schema import FieldType, Kind
from headwater.kernel.values import INT64_MAX, INT64_MIN, INTEGER_TEXT, NUMBER_TEXT


class BadValue(Exception):
    """A filter value that does not fit its property; the message says why."""


@dataclass(frozen=True)
class Moment:
    """A point or a whole UTC day given as an ISO 8601 value, in unix seconds.

    A date (``2024-01-01``) covers ``[lo, hi)``, the whole day; a datetime is the
    instant ``lo == hi`` and `hi_inclusive` is set.  So ``is after 2024-01-01`` starts
    on 2024-01-02 and ``is on or before 2024-01-01`` includes all of that day.
    """

    lo: float
    hi: float
    hi_inclusive: bool
    text: str


def to_moment(value: object) -> Moment:
    if not isinstance(value, str):
        raise BadValue("expected an ISO 8601 date or datetime string")
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            end = start + timedelta(days=1)
            return Moment(start.timestamp(), end.timestamp(), False, text)
        iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
        moment = datetime.fromisoformat(iso)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    except ValueError:
        raise BadValue("expected an ISO 8601 date or datetime string") from None
    except OverflowError:  # the day after 9999-12-31, or past it in UTC
        raise BadValue("the date is out of range (the calendar ends on 9999-12-30)") from None
    return Moment(seconds, seconds, True, text)


def to_number(value: object, kind: Kind) -> int | float:
    if isinstance(value, bool):
        raise BadValue("expected a number, got a boolean")
    number: int | float
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):  # as the Customer Model reads text: ASCII digits
        text = value.strip()
        if INTEGER_TEXT.fullmatch(text):
            number = int(text)
        elif NUMBER_TEXT.fullmatch(text):
            number = float(text)
        else:
            raise BadValue("expected a number")
    else:
        raise BadValue("expected a number")
    if isinstance(number, float) and not math.isfinite(number):
        raise BadValue("expected a finite number")
    if isinstance(number, int) and not INT64_MIN <= number <= INT64_MAX:
        raise BadValue("expected an integer within the 64-bit range Stripe's integers have")
    if kind is Kind.INTEGER and isinstance(number, float) and number.is_integer():
        number = int(number)
    return number


def to_string(value: object, ft: FieldType) -> str:
    if not isinstance(value, str):
        raise BadValue("expected a string")
    if ft.enum and value not in ft.enum:
        allowed = ", ".join(f'"{e}"' for e in ft.enum)
        raise BadValue(f"expected one of {allowed}")
    return value


def to_boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadValue("expected true or false")


def typed(value: object, ft: FieldType, *, element: bool = False) -> Any:
    """Convert one JSON filter value to the type its property is compared in.

    With `element`, the value is matched against the elements of an array
    (``preferred_locales contains "fr"``) or is a substring of a string.
    """
    kind = ft.kind
    if element:
        if kind is Kind.ARRAY and ft.items is not None and ft.items.kind is not Kind.STRING:
            return typed(value, ft.items)
        if not isinstance(value, str):
            raise BadValue("expected a string")
        return value
    if kind is Kind.STRING:
        return to_string(value, ft)
    if kind in (Kind.INTEGER, Kind.NUMBER):
        return to_number(value, kind)
    if kind is Kind.BOOLEAN:
        return to_boolean(value)
    if kind is Kind.TIMESTAMP:
        return to_moment(value)
    raise BadValue(f"{kind.value} properties take no value")


def show(value: Any) -> str:
    """A value as the filter rendering shows it: strings quoted, dates bare."""
    if isinstance(value, Moment):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return repr(value) if isinstance(value, float) else str(value)
