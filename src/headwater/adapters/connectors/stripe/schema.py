"""The Stripe customer as a typed tree, derived from the packaged OpenAPI extract.

`STRIPE_CUSTOMER_SCHEMA` describes every field of a customer as the API returns it
(version 2024-06-20): scalars, nullable fields, nested objects (``address``,
``shipping``, ``discount.coupon``, ``invoice_settings``...), string maps
(``metadata``), arrays and enums.  ``format: unix-time`` integers are `Kind.TIMESTAMP`.
Expandable references (``default_source``, ``test_clock``...) are typed as the string
id Stripe returns when they are not expanded; objects the extract names only by
reference are `Kind.JSON` (any JSON value).

This is the connector's declaration of what it reads; the types themselves are the
kernel's (`headwater.kernel.schema`), and the services hand this tree to filters,
mappings and suggestions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from headwater.kernel.schema import FieldType, Kind

_REF = "#/components/schemas/"


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


#: Stripe API version the schema describes (and the connector pins), and the
#: customer as the connector returns it.
STRIPE_API_VERSION, STRIPE_CUSTOMER_SCHEMA = _load()
