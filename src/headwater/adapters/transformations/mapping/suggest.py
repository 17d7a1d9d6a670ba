"""Suggesting a mapping from the source record (a Stripe customer) to a Customer Model."""

from __future__ import annotations

from headwater.adapters.transformations.mapping.types import CONVERTS_TO, T, of_field
from headwater.kernel.model import CustomerModel, PropertyType
from headwater.kernel.schema import FieldType, lookup

# Customer Model leaf path (or last segment) -> expression, typed by `types`.
_KNOWN: dict[str, tuple[str, T]] = {
    "first_name": ('nullif(split_part(trim(name), " ", 1), "")', T.STRING),
    "last_name": ('nullif(trim(split_rest(trim(name), " ", 2)), "")', T.STRING),
    "full_name": ("name", T.STRING),
    "created_at": ("created", T.TIMESTAMP),
    "stripe_id": ("id", T.STRING),
    "stripe_customer_id": ("id", T.STRING),
    "customer_id": ("id", T.STRING),
    "source_id": ("id", T.STRING),
    "locales": ("preferred_locales", T.ARRAY),
    "preferred_locales": ("preferred_locales", T.ARRAY),
    "country": ("address.country", T.STRING),
    "city": ("address.city", T.STRING),
    "postal_code": ("address.postal_code", T.STRING),
    "zip": ("address.postal_code", T.STRING),
    "zip_code": ("address.postal_code", T.STRING),
}


def suggest_mapping(model: CustomerModel, root: FieldType) -> dict[str, str]:
    """Propose ``{model path: expression}`` for every model property with an obvious
    source: same path in the Stripe customer (``email``, ``address.city``, ``metadata``),
    ``name`` split into first/last, ``created`` -> ``created_at``.  Only type-compatible
    pairs are proposed; the user can accept and edit the result."""
    out: dict[str, str] = {}
    for column in model.columns:
        expr = _for(column.path, column.type, root)
        if expr is not None:
            out[column.path] = expr
    return out


def _for(path: str, target: PropertyType, root: FieldType) -> str | None:
    same = lookup(path, root)
    if same is not None and target in CONVERTS_TO[of_field(same)]:
        return path
    last = path.rsplit(".", 1)[-1]
    for name in (path.replace(".", "_"), last):
        known = _KNOWN.get(name)
        if known is not None and known[1] is not T.ANY and target in CONVERTS_TO[known[1]]:
            return known[0]
    if last.endswith("_at"):
        stamp = lookup(last.removesuffix("_at"), root)
        if stamp is not None and of_field(stamp) is T.TIMESTAMP:
            return last.removesuffix("_at")
    return None
