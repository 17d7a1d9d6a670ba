"""The Customer Model: a workspace's profile schema, and conversion of values into it.

A model is an ordered list of properties ``{name, type, description}``; ``object``
properties nest.  Each leaf becomes one warehouse column named by joining its path
with ``_`` (``address.city`` -> ``address_city``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import orjson

from headwater.kernel.errors import InvalidInput

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_NAME = 60


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


@dataclass(frozen=True)
class Property:
    name: str
    type: PropertyType
    description: str = ""
    properties: tuple[Property, ...] = ()  # only for OBJECT

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type.value}
        if self.description:
            out["description"] = self.description
        if self.type is PropertyType.OBJECT:
            out["properties"] = [p.as_dict() for p in self.properties]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "") -> Property:
        loc = where or str(data.get("name", "?"))
        if not isinstance(data, Mapping):
            raise InvalidInput("a property must be an object", loc)
        name = data.get("name")
        if not isinstance(name, str):
            raise InvalidInput("property name must be a string", loc)
        check_name(name, loc)
        try:
            ptype = PropertyType(str(data.get("type")))
        except ValueError:
            allowed = ", ".join(t.value for t in PropertyType)
            raise InvalidInput(
                f"unknown type {data.get('type')!r} (expected one of {allowed})", loc
            ) from None
        children: tuple[Property, ...] = ()
        if ptype is PropertyType.OBJECT:
            raw = data.get("properties") or []
            children = tuple(
                cls.from_dict(p, f"{loc}.{p.get('name', i) if isinstance(p, Mapping) else i}")
                for i, p in enumerate(raw)
            )
        return cls(name, ptype, str(data.get("description") or ""), children)


def check_name(name: str, where: str | None = None) -> None:
    if name.startswith("_"):
        raise InvalidInput(f"property name {name!r}: a leading '_' is reserved", where)
    if not NAME.match(name) or len(name) > MAX_NAME:
        raise InvalidInput(
            f"property name {name!r} must match ^[a-z][a-z0-9_]*$ and be at most "
            f"{MAX_NAME} characters",
            where,
        )


@dataclass(frozen=True)
class Column:
    """A flattened leaf property: its dotted path, column name and type."""

    path: str
    name: str
    type: PropertyType


@dataclass(frozen=True)
class CustomerModel:
    properties: tuple[Property, ...]
    _columns: tuple[Column, ...] = field(default=(), compare=False, repr=False)
    _by_path: dict[str, Column] = field(default_factory=dict, compare=False, repr=False)
    # path -> (column name, Python types that need no conversion, type); hot path.
    _plan: dict[str, tuple[str, tuple[type, ...], PropertyType]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        columns = tuple(_leaves(self.properties, ""))
        seen: dict[str, str] = {}
        names: set[str] = set()
        for p in self.properties:
            if p.name in names:
                raise InvalidInput(f"duplicate property {p.name!r}")
            names.add(p.name)
        for col in columns:
            if col.name in seen:
                raise InvalidInput(
                    f"properties {seen[col.name]!r} and {col.path!r} both flatten to "
                    f"column {col.name!r}"
                )
            seen[col.name] = col.path
        object.__setattr__(self, "_columns", columns)
        object.__setattr__(self, "_by_path", {c.path: c for c in columns})
        plan = {c.path: (c.name, _NATIVE.get(c.type, ()), c.type) for c in columns}
        object.__setattr__(self, "_plan", plan)

    @property
    def columns(self) -> tuple[Column, ...]:
        return self._columns

    def column(self, path: str) -> Column | None:
        return self._by_path.get(path)

    def find(self, path: str) -> Property | None:
        props = self.properties
        found: Property | None = None
        for part in path.split("."):
            found = next((p for p in props if p.name == part), None)
            if found is None:
                return None
            props = found.properties
        return found

    def as_list(self) -> list[dict[str, Any]]:
        return [p.as_dict() for p in self.properties]

    @classmethod
    def from_list(cls, data: Sequence[Mapping[str, Any]]) -> CustomerModel:
        if not isinstance(data, Sequence) or isinstance(data, str):
            raise InvalidInput("a Customer Model is a list of properties")
        return cls(tuple(Property.from_dict(p, f"[{i}]") for i, p in enumerate(data)))

    # -- conversion -----------------------------------------------------------------

    def to_columns(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Validate a transformation's output and return typed values by column name.

        `values` is keyed by dotted property path; an ``object`` property may also be
        given as a nested mapping.  Raises `ConversionError` naming the property.
        """
        out: dict[str, Any] = {}
        plan = self._plan
        for key, value in values.items():
            entry = plan.get(key)
            if entry is None:
                self._put(key, value, out)  # objects given whole, or unknown keys
            elif value is None or type(value) in entry[1]:
                out[entry[0]] = value
            else:
                out[entry[0]] = convert(value, entry[2], key)
        return out

    def _put(self, path: str, value: Any, out: dict[str, Any]) -> None:
        if not isinstance(path, str):
            raise ConversionError(f"key {path!r} is not a string")
        col = self._by_path.get(path)
        if col is not None:
            out[col.name] = convert(value, col.type, path)
            return
        prop = self.find(path)
        if prop is None:
            raise ConversionError(f"unknown Customer Model property {path!r}")
        # An object property given as a whole.
        if value is None:
            for leaf in _leaves(prop.properties, path + "."):
                out[leaf.name] = None
            return
        if not isinstance(value, Mapping):
            raise ConversionError(f"property {path!r} is an object; got {_show(value)}")
        for k, v in value.items():
            self._put(f"{path}.{k}", v, out)


def _leaves(props: Sequence[Property], prefix: str) -> Iterator[Column]:
    for p in props:
        path = prefix + p.name
        if p.type is PropertyType.OBJECT:
            yield from _leaves(p.properties, path + ".")
        else:
            yield Column(path, path.replace(".", "_"), p.type)


class ConversionError(ValueError):
    """A value that cannot be converted to its property's type."""


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _fail(value: Any, ptype: PropertyType, path: str, why: str = "") -> ConversionError:
    extra = f" ({why})" if why else ""
    return ConversionError(
        f"property {path!r} ({ptype.value}): cannot convert {_show(value)}{extra}"
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
    except (ValueError, TypeError, OverflowError, InvalidOperation, ArithmeticError):
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
        return repr(v)
    if isinstance(v, datetime | date):
        return v.isoformat()
    raise ConversionError("expected a string")


def _to_integer(v: Any) -> int:
    if isinstance(v, bool):
        raise ConversionError("expected an integer, got a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, float | Decimal):
        if v != v.to_integral_value() if isinstance(v, Decimal) else not float(v).is_integer():
            raise ConversionError("not a whole number")
        return int(v)
    if isinstance(v, str):
        return int(v.strip())
    raise ConversionError("expected an integer")


def _to_float(v: Any) -> float:
    if isinstance(v, bool):
        raise ConversionError("expected a number, got a boolean")
    if isinstance(v, int | float | Decimal):
        out = float(v)
    elif isinstance(v, str):
        out = float(v.strip())
    else:
        raise ConversionError("expected a number")
    if not math.isfinite(out):
        raise ConversionError("not a finite number")
    return out


def _to_decimal(v: Any) -> Decimal:
    if isinstance(v, bool):
        raise ConversionError("expected a number, got a boolean")
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ConversionError("not a finite number")
        return Decimal(repr(v))
    if isinstance(v, int | Decimal):
        return Decimal(v)
    if isinstance(v, str):
        out = Decimal(v.strip())
        if not out.is_finite():
            raise ConversionError("not a finite number")
        return out
    raise ConversionError("expected a number")


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


def _to_datetime(v: Any) -> datetime:
    if isinstance(v, datetime):
        return v.astimezone(UTC) if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    if isinstance(v, bool):
        raise ConversionError("expected a datetime, got a boolean")
    if isinstance(v, int | float):
        return datetime.fromtimestamp(v, UTC)
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
_NATIVE: dict[PropertyType, tuple[type, ...]] = {
    PropertyType.STRING: (str,),
    PropertyType.INTEGER: (int,),
    PropertyType.FLOAT: (float,),
    PropertyType.DECIMAL: (Decimal,),
    PropertyType.BOOLEAN: (bool,),
    PropertyType.JSON: (dict, list, str, int, bool),
}


def _p(name: str, ptype: PropertyType, description: str) -> Property:
    return Property(name, ptype, description)


S = PropertyType.STRING

DEFAULT_MODEL = CustomerModel(
    (
        _p("email", S, "Primary email address"),
        _p("first_name", S, "Given name"),
        _p("last_name", S, "Family name"),
        _p("phone", S, "Phone number"),
        Property(
            "address",
            PropertyType.OBJECT,
            "Postal address",
            (
                _p("line1", S, "Street, PO box or company name"),
                _p("line2", S, "Apartment, suite, unit or building"),
                _p("city", S, "City, district, suburb, town or village"),
                _p("postal_code", S, "ZIP or postal code"),
                _p("state", S, "State, county, province or region"),
                _p("country", S, "Two-letter country code (ISO 3166-1 alpha-2)"),
            ),
        ),
        _p("currency", S, "Three-letter ISO currency code"),
        _p("created_at", PropertyType.DATETIME, "When the customer was created"),
        _p("metadata", PropertyType.JSON, "Free-form key/value metadata"),
    )
)
