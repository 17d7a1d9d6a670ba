"""The Stripe customer as a typed tree, derived from the packaged OpenAPI extract.

`STRIPE_CUSTOMER_SCHEMA` describes every field of a customer as the API returns it
(version 2024-06-20): scalars, nullable fields, nested objects (``address``,
``shipping``, ``discount.coupon``, ``invoice_settings``...), string maps
(``metadata``), arrays and enums.  ``format: unix-time`` integers are `Kind.TIMESTAMP`.
Expandable references (``default_source``, ``test_clock``...) are typed as the string
id Stripe returns when they are not expanded; objects the extract names only by
reference are `Kind.JSON` (any JSON value).

Filters, mapping type-checks, suggestions and the console read this tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

_REF = "#/components/schemas/"


class Kind(StrEnum):
    """The type of one source field."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"  # integer unix seconds
    OBJECT = "object"  # fixed, named fields
    MAP = "map"  # free keys, all values of one type (``metadata``)
    ARRAY = "array"
    JSON = "json"  # any JSON value; shape not described by the extract


SCALARS = frozenset({Kind.STRING, Kind.INTEGER, Kind.NUMBER, Kind.BOOLEAN, Kind.TIMESTAMP})


@dataclass(frozen=True)
class FieldType:
    """Type information of one field of a source record.

    `nullable`: the API may return ``null``; `optional`: the key may be absent.
    `fields` is set for `Kind.OBJECT`; `items` is the element type of an array or
    the value type of a map.
    """

    kind: Kind
    nullable: bool = False
    optional: bool = False
    description: str = ""
    enum: tuple[Any, ...] = ()
    fields: Mapping[str, FieldType] = field(default_factory=dict)
    items: FieldType | None = None

    def child(self, key: str) -> FieldType | None:
        """The type of `key` inside this object or map (None when it has no such key)."""
        if self.kind is Kind.OBJECT:
            return self.fields.get(key)
        if self.kind is Kind.MAP:
            return self.items
        if self.kind is Kind.JSON:
            return FieldType(Kind.JSON, nullable=True, optional=True)
        return None

    def describe(self) -> str:
        """Short human name: ``string``, ``map of string``, ``array of string``."""
        if self.kind in (Kind.MAP, Kind.ARRAY) and self.items is not None:
            return f"{self.kind.value} of {self.items.describe()}"
        return self.kind.value


class _Builder:
    """Resolves OpenAPI schemas (refs, anyOf, nullable) into `FieldType` trees."""

    def __init__(self, schemas: Mapping[str, Any]) -> None:
        self.schemas = schemas

    def build(self, spec: Mapping[str, Any], nullable: bool, optional: bool) -> FieldType:
        nullable = nullable or bool(spec.get("nullable"))
        desc = str(spec.get("description") or "")
        if "$ref" in spec:
            return self._ref(spec["$ref"], nullable, optional, desc)
        if "anyOf" in spec:
            options = spec["anyOf"]
            # Expandable: Stripe returns the id string unless the caller expands it.
            chosen = next((o for o in options if o.get("type") == "string"), options[0])
            inner = self.build(chosen, nullable, optional)
            return _with_description(inner, desc)
        kind = spec.get("type")
        enum = tuple(spec.get("enum") or ())
        if kind == "integer":
            ts = spec.get("format") == "unix-time"
            k = Kind.TIMESTAMP if ts else Kind.INTEGER
            return FieldType(k, nullable, optional, desc, enum)
        if kind in ("string", "boolean", "number"):
            return FieldType(Kind(kind), nullable, optional, desc, enum)
        if kind == "array":
            items = self.build(spec.get("items") or {}, False, False)
            return FieldType(Kind.ARRAY, nullable, optional, desc, items=items)
        if kind == "object" and isinstance(spec.get("additionalProperties"), Mapping):
            values = self.build(spec["additionalProperties"], False, False)
            return FieldType(Kind.MAP, nullable, optional, desc, items=values)
        if kind == "object" and "properties" in spec:
            return self._object(spec, nullable, optional, desc)
        return FieldType(Kind.JSON, True, optional, desc)

    def _ref(self, ref: str, nullable: bool, optional: bool, desc: str) -> FieldType:
        name = ref.removeprefix(_REF)
        target = self.schemas.get(name)
        if target is None:  # referenced by name only in the extract
            return FieldType(Kind.JSON, True, optional, desc)
        inner = self.build(target, nullable, optional)
        return _with_description(inner, desc or inner.description)

    def _object(
        self, spec: Mapping[str, Any], nullable: bool, optional: bool, desc: str
    ) -> FieldType:
        required = set(spec.get("required") or ())
        fields = {
            name: self.build(sub, False, name not in required)
            for name, sub in sorted(spec["properties"].items())
        }
        return FieldType(Kind.OBJECT, nullable, optional, desc, fields=fields)


def _with_description(ft: FieldType, desc: str) -> FieldType:
    if not desc or desc == ft.description:
        return ft
    return FieldType(ft.kind, ft.nullable, ft.optional, desc, ft.enum, ft.fields, ft.items)


@cache
def _load() -> tuple[str, FieldType]:
    text = (
        resources.files("headwater.adapters.connectors.stripe")
        .joinpath("customer-schema.json")
        .read_text(encoding="utf-8")
    )
    doc = json.loads(text)
    schemas = doc["schemas"]
    root = _Builder(schemas).build(schemas["customer"], False, False)
    return str(doc.get("openapi_version", "")), root


#: Stripe API version the schema describes (and the connector pins).
STRIPE_API_VERSION, STRIPE_CUSTOMER_SCHEMA = _load()


def split_path(path: str, root: FieldType = STRIPE_CUSTOMER_SCHEMA) -> list[str] | None:
    """Split a dotted path into record keys, or None when the path is unknown.

    Inside a map whose values are scalars the rest of the path is one key, so
    ``metadata.plan.tier`` reaches the metadata key ``"plan.tier"``.
    """
    if not path:
        return None
    parts = path.split(".")
    keys: list[str] = []
    current: FieldType | None = root
    i = 0
    while i < len(parts):
        if current is None or any(not p for p in parts[i:]):
            return None
        if current.kind is Kind.MAP and current.items and current.items.kind in SCALARS:
            keys.append(".".join(parts[i:]))
            return keys
        current = current.child(parts[i])
        keys.append(parts[i])
        i += 1
    return keys if current is not None else None


def lookup_keys(keys: list[str], root: FieldType = STRIPE_CUSTOMER_SCHEMA) -> FieldType | None:
    """The type reached by following record `keys` from `root`."""
    current: FieldType | None = root
    for key in keys:
        if current is None:
            return None
        current = current.child(key)
    return current


def lookup(path: str, root: FieldType = STRIPE_CUSTOMER_SCHEMA) -> FieldType | None:
    """The type of a dotted path (``address.city``, ``metadata.<any key>``), or None."""
    keys = split_path(path, root)
    return None if keys is None else lookup_keys(keys, root)


def leaf_paths(root: FieldType = STRIPE_CUSTOMER_SCHEMA) -> list[tuple[str, FieldType]]:
    """Every path down to a non-object field, in schema order (maps and arrays are leaves)."""
    return list(_walk(root, ""))


def _walk(ft: FieldType, prefix: str) -> Iterator[tuple[str, FieldType]]:
    for name, sub in ft.fields.items():
        path = prefix + name
        if sub.kind is Kind.OBJECT:
            yield from _walk(sub, path + ".")
        else:
            yield path, sub
