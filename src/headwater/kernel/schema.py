"""Types of source records: a typed tree each connector declares for what it reads.

A `FieldType` describes one field of a source record (a Stripe customer, for the
Stripe connector): scalars, nullable fields, nested objects, string maps
(``metadata``), arrays, enums, and `Kind.JSON` for values whose shape is not
described.  Filters, mapping type-checks and suggestions take the root `FieldType`
from the service that calls them; they never reach into a connector for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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


def split_path(path: str, root: FieldType) -> list[str] | None:
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


def lookup_keys(keys: list[str], root: FieldType) -> FieldType | None:
    """The type reached by following record `keys` from `root`."""
    current: FieldType | None = root
    for key in keys:
        if current is None:
            return None
        current = current.child(key)
    return current


def lookup(path: str, root: FieldType) -> FieldType | None:
    """The type of a dotted path (``address.city``, ``metadata.<any key>``), or None."""
    keys = split_path(path, root)
    return None if keys is None else lookup_keys(keys, root)


def leaf_paths(root: FieldType) -> list[tuple[str, FieldType]]:
    """Every path down to a non-object field, in schema order (maps and arrays are leaves)."""
    return list(_walk(root, ""))


def _walk(ft: FieldType, prefix: str) -> Iterator[tuple[str, FieldType]]:
    for name, sub in ft.fields.items():
        path = prefix + name
        if sub.kind is Kind.OBJECT:
            yield from _walk(sub, path + ".")
        else:
            yield path, sub
