"""What an editor of a pipeline offers its author: the source properties a filter can
test, with the operators valid for each property's type, the Customer Model properties a
mapping fills, and the `transform(customer)` templates of the code transformations.

The console's editor builds its property picker, operator lists and code templates from
these, so it offers exactly what `definition.check_filter` and `check_transformation`
accept when the pipeline is saved.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from headwater.adapters.transformations.filters.operators import OPERATORS, operators_for
from headwater.adapters.transformations.mapping import FUNCTIONS
from headwater.kernel.model import CustomerModel, PropertyType
from headwater.kernel.schema import FieldType, Kind
from headwater.services.pipelines.definition import source_schema

JAVASCRIPT_TEMPLATE = """\
// Called once per Stripe customer (as Stripe's API returns it; `created` is unix seconds).
// Return an object keyed by Customer Model paths, or null to skip the customer.
function transform(customer) {
  return {
    email: customer.email,
    first_name: (customer.name || "").split(" ")[0] || null,
    "address.country": customer.address ? customer.address.country : null,
  };
}
"""

PYTHON_TEMPLATE = """\
# Called once per Stripe customer (as Stripe's API returns it; `created` is unix seconds).
# Return a dict keyed by Customer Model paths, or None to skip the customer.
def transform(customer: dict) -> dict | None:
    address = customer.get("address") or {}
    return {
        "email": customer.get("email"),
        "first_name": (customer.get("name") or "").split(" ")[0] or None,
        "address.country": address.get("country"),
    }
"""

TEMPLATES = {"javascript": JAVASCRIPT_TEMPLATE, "python": PYTHON_TEMPLATE}


def _operators(kind: Kind) -> list[dict[str, Any]]:
    return [{"name": name, "arity": OPERATORS[name].arity} for name in operators_for(kind)]


def _walk(ft: FieldType, prefix: str) -> Iterator[tuple[str, FieldType]]:
    for name, child in sorted(ft.fields.items()):
        path = f"{prefix}{name}"
        yield path, child
        if child.kind is Kind.OBJECT:
            yield from _walk(child, path + ".")


def filter_properties() -> list[dict[str, Any]]:
    """Every property a filter can test, by dotted path: its type, description and
    operators (``arity``: values it takes, -1 for one or more).  A map (``metadata``)
    also says the type of its keys' values (``metadata.<key>``) and their operators."""
    out = []
    for path, ft in _walk(source_schema(), ""):
        entry: dict[str, Any] = {
            "path": path,
            "kind": ft.kind.value,
            "description": ft.description,
            "operators": _operators(ft.kind),
        }
        if ft.kind is Kind.MAP and ft.items is not None:
            entry["items"] = ft.items.kind.value
            entry["item_operators"] = _operators(ft.items.kind)
        out.append(entry)
    return out


def model_fields(model: CustomerModel) -> list[dict[str, Any]]:
    """The Customer Model properties a mapping fills (leaves, by dotted path), in order,
    with their type and description."""
    out = []
    for column in model.columns:
        prop = model.find(column.path)
        description = prop.description if prop else ""
        out.append({"path": column.path, "type": column.type.value, "description": description})
    return out


PROPERTY_TYPES = [t.value for t in PropertyType]


def mapping_functions() -> list[str]:
    """The functions a mapping expression can call, by name (``lower``, ``coalesce``...);
    operators such as ``==`` and ``and`` are written between their operands instead."""
    return [name for name in FUNCTIONS if name.isidentifier() and name not in ("and", "or", "not")]
