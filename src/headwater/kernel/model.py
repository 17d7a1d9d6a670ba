"""The Customer Model: a workspace's profile schema (conversion of values: `values`).

A model is an ordered list of properties ``{name, type, description}``; ``object``
properties nest.  Each leaf becomes one warehouse column named by joining its path
with ``_`` (``address.city`` -> ``address_city``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from headwater.kernel.errors import InvalidInput
from headwater.kernel.values import (
    NATIVE,
    ConversionError,
    PropertyType,
    convert,
    show_value,
)

# `PropertyType`, `ConversionError` and `convert` live in `values`; they are part of
# the model's public surface too.
__all__ = [
    "DEFAULT_MODEL",
    "MAX_NAME",
    "NAME",
    "Column",
    "ConversionError",
    "CustomerModel",
    "Property",
    "PropertyType",
    "check_name",
    "convert",
]

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_NAME = 60
#: Longest column name (PostgreSQL's identifiers: 63 bytes; names are ASCII).
MAX_COLUMN = 63


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
            if len(col.name) > MAX_COLUMN:
                raise InvalidInput(
                    f"property {col.path!r} flattens to column {col.name!r}, "
                    f"{len(col.name)} characters: warehouses take at most {MAX_COLUMN}"
                )
            if col.name in seen:
                raise InvalidInput(
                    f"properties {seen[col.name]!r} and {col.path!r} both flatten to "
                    f"column {col.name!r}"
                )
            seen[col.name] = col.path
        object.__setattr__(self, "_columns", columns)
        object.__setattr__(self, "_by_path", {c.path: c for c in columns})
        plan = {c.path: (c.name, NATIVE.get(c.type, ()), c.type) for c in columns}
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
        whole: list[str] | None = None  # columns set by objects given whole
        for key, value in values.items():
            entry = plan.get(key)
            if entry is None:
                whole = [] if whole is None else whole
                self._put(key, value, out, whole)  # objects given whole, or unknown keys
            elif value is None or type(value) in entry[1]:
                out[entry[0]] = value
            else:
                out[entry[0]] = convert(value, entry[2], key)
        if whole and len(out) < len(whole) + sum(1 for k in values if k in plan):
            self._twice(values, whole)
        return out

    def _twice(self, values: Mapping[str, Any], whole: list[str]) -> None:
        """Name a leaf the result gives twice (on its own and in its object)."""
        seen = {plan[0] for k in values if (plan := self._plan.get(k))}
        for name in whole:
            if name in seen:
                path = next(c.path for c in self._columns if c.name == name)
                raise ConversionError(
                    f"property {path!r} is given twice (on its own and in its object)"
                )
            seen.add(name)

    def _put(self, path: str, value: Any, out: dict[str, Any], whole: list[str]) -> None:
        if not isinstance(path, str):
            raise ConversionError(f"key {path!r} is not a string")
        col = self._by_path.get(path)
        if col is not None:
            out[col.name] = convert(value, col.type, path)
            whole.append(col.name)
            return
        prop = self.find(path)
        if prop is None:
            raise ConversionError(f"unknown Customer Model property {path!r}")
        # An object property given as a whole.
        if value is None:
            for leaf in _leaves(prop.properties, path + "."):
                out[leaf.name] = None
                whole.append(leaf.name)
            return
        if not isinstance(value, Mapping):
            raise ConversionError(f"property {path!r} is an object; got {show_value(value)}")
        for k, v in value.items():
            self._put(f"{path}.{k}", v, out, whole)


def _leaves(props: Sequence[Property], prefix: str) -> Iterator[Column]:
    for p in props:
        path = prefix + p.name
        if p.type is PropertyType.OBJECT:
            yield from _leaves(p.properties, path + ".")
        else:
            yield Column(path, path.replace(".", "_"), p.type)


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
