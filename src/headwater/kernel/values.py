"""Customer Model value types and the conversion of JSON-ish values into them.

`convert` turns what a transformation returned (JSON values, unix seconds, ISO strings)
into the Python value stored for a property type, or raises `ConversionError` naming
the property and the value.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import orjson


class PropertyType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    DATE = "date"
    JSON = "json"
    ARRAY = "array"
    OBJECT = "object"


class ConversionError(ValueError):
    """A value that cannot be converted to its property's type."""


def show_value(value: Any) -> str:
    """`value` as JSON for a message, in its own script ('Zoë', not 'Zo\\u00eb'), but
    what does not print escaped: a lone surrogate (no stored text holds one), controls,
    format characters (a right-to-left override, a zero-width space), other spaces."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in text)
    return text if len(text) <= 80 else text[:77] + "..."


def _fail(value: Any, ptype: PropertyType, path: str, why: str = "") -> ConversionError:
    extra = f" ({why})" if why else ""
    return ConversionError(
        f"property {path!r} ({ptype.value}): cannot convert {show_value(value)}{extra}"
    )


def convert(value: Any, ptype: PropertyType, path: str = "value") -> Any:
    """Convert a JSON-ish value to the Python value stored for `ptype`.

    ``None`` stays ``None`` for every type.  Unix seconds convert to datetimes.
    """
    if value is None:
        return None
    try:
        return _CONVERTERS[ptype](value)
    except ConversionError as exc:
        raise _fail(value, ptype, path, str(exc)) from None
    except (ValueError, TypeError, OverflowError, InvalidOperation, ArithmeticError, OSError):
        # OSError: the platform's own range of unix seconds (1.7e18: nanoseconds)
        raise _fail(value, ptype, path) from None


def _to_string(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | Decimal):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ConversionError("not a finite number")
        return float_text(v)
    if isinstance(v, datetime | date):
        return v.isoformat()
    raise ConversionError("expected a string")


def float_text(v: float) -> str:
    """A finite float as text, as the mapping's to_string() writes it: a whole one
    below 1e16 without its '.0' (as JavaScript's JSON has it), else Python's repr."""
    return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)


#: Text that converts to a number: ASCII digits only (Python's int(), float() and
#: Decimal() also take "1_000" and other scripts' digits, which SQL's casts refuse),
#: surrounding whitespace trimmed; integers take no point or exponent.
INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _number_text(v: str, pattern: re.Pattern[str]) -> str:
    text = v.strip()
    if pattern.fullmatch(text) is None:
        if pattern is INTEGER_TEXT:
            raise ConversionError("expected an integer: ASCII digits, an optional sign")
        raise ConversionError("expected a number: ASCII digits, a sign, point, exponent")
    return text


#: Integers are stored as BIGINT: 64 bits.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _to_integer(v: Any) -> int:
    if type(v) is int and INT64_MIN <= v <= INT64_MAX:  # the common case
        return v
    if isinstance(v, bool):
        raise ConversionError("expected an integer, got a boolean")
    out: int
    if isinstance(v, int):
        out = v
    elif isinstance(v, float | Decimal):
        if v != v.to_integral_value() if isinstance(v, Decimal) else not float(v).is_integer():
            raise ConversionError("not a whole number")
        out = int(v)
    elif isinstance(v, str):
        out = int(_number_text(v, INTEGER_TEXT))
    else:
        raise ConversionError("expected an integer")
    if not INT64_MIN <= out <= INT64_MAX:
        raise ConversionError("out of range: integers are 64-bit")
    return out


def _to_float(v: Any) -> float:
    if isinstance(v, bool):
        raise ConversionError("expected a number, got a boolean")
    if isinstance(v, int | float | Decimal):
        out = float(v)
    elif isinstance(v, str):
        out = float(_number_text(v, NUMBER_TEXT))
    else:
        raise ConversionError("expected a number")
    if not math.isfinite(out):
        raise ConversionError("not a finite number")
    return out


#: Decimals are stored as DECIMAL(38, 9): 29 digits before the point, 9 after.
DECIMAL_DIGITS, DECIMAL_SCALE = 38, 9


def _to_decimal(v: Any) -> Decimal:
    if isinstance(v, bool):
        raise ConversionError("expected a number, got a boolean")
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ConversionError("not a finite number")
        return _in_range(Decimal(repr(v)))
    if isinstance(v, int | Decimal):
        return _in_range(Decimal(v))
    if isinstance(v, str):
        return _in_range(Decimal(_number_text(v, NUMBER_TEXT)))
    raise ConversionError("expected a number")


#: Rounding to the scale as DuckDB's DECIMAL(38, 9) does (half away from zero), so that
#: PostgreSQL's numeric, which keeps every digit, stores the same value.
_SCALE = Decimal(1).scaleb(-DECIMAL_SCALE)
_ZERO = Decimal(0).quantize(_SCALE)
_ROUNDING = Context(prec=DECIMAL_DIGITS, rounding=ROUND_HALF_UP, traps=[InvalidOperation])


def _in_range(out: Decimal) -> Decimal:
    """`out` rounded to DECIMAL(38, 9)'s scale, when that type can hold it (one that
    rounds to zero is zero at once: "1e-99999999999" would be written out digit by
    digit)."""
    if not out.is_finite():
        raise ConversionError("not a finite number")
    if out.is_zero() or out.adjusted() < -DECIMAL_SCALE - 2:
        return _ZERO
    if out.adjusted() < DECIMAL_DIGITS - DECIMAL_SCALE:
        try:
            return out.quantize(_SCALE, context=_ROUNDING)
        except InvalidOperation:  # 99...9.9999999995 rounds up past the digits
            pass
    raise ConversionError(
        f"out of range: at most {DECIMAL_DIGITS - DECIMAL_SCALE} digits before the point"
    )


def decimal_text(value: Decimal) -> str:
    """`value` as every document spells a decimal: plain decimal text, without the
    column's scale or an exponent (``0E-9`` is ``0``, ``12.500000000`` is ``12.5``,
    ``1E+20`` is ``100000000000000000000``), so that the value reads the same whichever
    engine's scale it was read back at."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def document_value(value: object) -> str:
    """A value JSON has no spelling for, as every document (the API's, the CLI's
    ``--json``, the console's) spells it: a datetime or date in ISO 8601, a decimal as
    `decimal_text`; for the encoders' ``default``.  Anything else is a `TypeError`."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return decimal_text(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_TRUE = {"true", "t", "yes", "1"}
_FALSE = {"false", "f", "no", "0"}


def _to_boolean(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        return v.strip().lower() in _TRUE
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    raise ConversionError("expected a boolean")


_CALENDAR = "out of range: years 1 to 9999, in UTC"


def _to_datetime(v: Any) -> datetime:
    if isinstance(v, datetime):
        try:
            return v.astimezone(UTC) if v.tzinfo else v.replace(tzinfo=UTC)
        except OverflowError:  # 9999-12-31T23:00-05:00 is past the calendar in UTC
            raise ConversionError(_CALENDAR) from None
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    if isinstance(v, bool):
        raise ConversionError("expected a datetime, got a boolean")
    if isinstance(v, int | float):
        try:
            return datetime.fromtimestamp(v, UTC)
        except (OverflowError, OSError, ValueError):  # OSError: the platform's range
            if math.isnan(v):
                raise
            raise ConversionError(_CALENDAR) from None
    if isinstance(v, str):
        text = v.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
        return _to_datetime(parsed)
    raise ConversionError("expected an ISO 8601 datetime or unix seconds")


def _to_date(v: Any) -> date:
    if isinstance(v, datetime):
        return _to_datetime(v).date()
    if isinstance(v, date):
        return v
    if isinstance(v, str) and len(v.strip()) == 10:
        return date.fromisoformat(v.strip())
    return _to_datetime(v).date()


def _to_json(v: Any) -> Any:
    # Must be serialisable as JSON; keep the value itself.
    if isinstance(v, float) and not math.isfinite(v):
        raise ConversionError("not a finite number")
    try:
        orjson.dumps(v)
    except orjson.JSONEncodeError as exc:
        raise ConversionError(str(exc)) from None
    return v


def _to_array(v: Any) -> list[str]:
    if not isinstance(v, list | tuple):
        raise ConversionError("expected an array of strings")
    return [_to_string(item) for item in v if item is not None]


def _to_object(_v: Any) -> Any:  # objects are flattened before conversion
    raise ConversionError("objects are stored as their leaf properties")


_CONVERTERS = {
    PropertyType.STRING: _to_string,
    PropertyType.INTEGER: _to_integer,
    PropertyType.FLOAT: _to_float,
    PropertyType.DECIMAL: _to_decimal,
    PropertyType.BOOLEAN: _to_boolean,
    PropertyType.DATETIME: _to_datetime,
    PropertyType.DATE: _to_date,
    PropertyType.JSON: _to_json,
    PropertyType.ARRAY: _to_array,
    PropertyType.OBJECT: _to_object,
}


#: Values of these exact Python types are stored as they are (no conversion needed).
#: JSON values from a source record or a runtime are already valid JSON; str/int/bool
#: are exact (``bool`` is not ``int`` here because `type()` is compared, not isinstance).
NATIVE: dict[PropertyType, tuple[type, ...]] = {
    PropertyType.STRING: (str,),
    # Not integers (64 bits), floats (NaN, infinities) nor Decimals (range): checked.
    PropertyType.BOOLEAN: (bool,),
    PropertyType.JSON: (dict, list, str, int, bool),
}
