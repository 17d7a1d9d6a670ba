"""Pipeline filters (DESIGN.md §5): validate, compile to a predicate, render as text.

A filter is ``{"logical": "and"|"or", "conditions": [CONDITION | FILTER, ...]}`` with
``CONDITION = {"property": "address.country", "operator": "is", "values": ["IT"]}``,
evaluated on the raw Stripe customer before the transformation.  ``None`` or ``{}``
keeps every customer.  The semantics of null and missing values are documented in
`headwater.adapters.transformations.filters.operators`.

Every function takes the source schema (`headwater.kernel.schema.FieldType`, the
root of what the connector reads) from its caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from headwater.adapters.transformations.filters.operators import MISSING, Getter, build
from headwater.adapters.transformations.filters.spec import Condition, Group, parse, problems
from headwater.adapters.transformations.filters.values import show
from headwater.kernel.errors import Problem
from headwater.kernel.records import Record
from headwater.kernel.schema import FieldType

__all__ = ["compile_filter", "filter_problems", "render_filter"]


def filter_problems(data: object, root: FieldType) -> list[Problem]:
    """Every problem in `data`, each located (``conditions[0].conditions[2]``); empty
    when the filter is valid."""
    return problems(data, root)


def compile_filter(data: object, root: FieldType) -> Callable[[Record], bool]:
    """Validate `data` and return a predicate: True keeps the customer.

    Raises `InvalidInput` carrying every problem.  Compile once per run; the
    predicate never raises on odd records (a value of an unexpected type simply does
    not match a positive condition).
    """
    group = parse(data, root)
    if group is None:
        return _keep_all
    return _compile_group(group)


def render_filter(data: object, root: FieldType) -> str:
    """Readable text, e.g. ``address.country is one of ("IT", "FR") and created is
    after 2024-01-01``; nested groups are parenthesised.  ``""`` for no filter."""
    group = parse(data, root)
    return "" if group is None else _render_group(group, nested=False)


def _keep_all(_record: Record) -> bool:
    return True


def _compile_group(group: Group) -> Callable[[Record], bool]:
    preds = [
        _compile_group(item) if isinstance(item, Group) else _compile_condition(item)
        for item in group.items
    ]
    if len(preds) == 1:
        return preds[0]
    # One level per group, whatever its number of conditions (a chain of pairs nested a
    # level per condition: a group of 1,000 exhausted Python's stack on every record).
    if len(preds) == 2:  # the common case, without a generator
        a, b = preds
        return (lambda r: a(r) and b(r)) if group.logical == "and" else (lambda r: a(r) or b(r))
    if group.logical == "and":
        return lambda r: all(p(r) for p in preds)
    return lambda r: any(p(r) for p in preds)


def _compile_condition(cond: Condition) -> Callable[[Record], bool]:
    return build(cond.operator, getter(cond.keys), list(cond.values))


def getter(keys: tuple[str, ...]) -> Getter:
    """A fast accessor for `keys`; `MISSING` when a key is absent or a parent is no object."""
    if len(keys) == 1:
        (k,) = keys
        return lambda r: r.get(k, MISSING)
    if len(keys) == 2:
        k1, k2 = keys

        def get2(r: Record) -> Any:
            parent = r.get(k1)
            return parent.get(k2, MISSING) if type(parent) is dict else MISSING

        return get2

    def get_n(r: Record) -> Any:
        value: Any = r
        for k in keys:
            if type(value) is not dict:
                return MISSING
            value = value.get(k, MISSING)
            if value is MISSING:
                return MISSING
        return value

    return get_n


def _render_group(group: Group, nested: bool) -> str:
    parts = [
        _render_group(item, nested=True) if isinstance(item, Group) else _render_condition(item)
        for item in group.items
    ]
    text = f" {group.logical} ".join(parts)
    return f"({text})" if nested and len(parts) > 1 else text


def _render_condition(cond: Condition) -> str:
    head = f"{_render_path(cond.property)} {cond.operator.name}"
    values = cond.values
    if cond.operator.arity == 0:
        return head
    if cond.operator.arity == 2:
        return f"{head} {show(values[0])} and {show(values[1])}"
    if cond.operator.arity < 0:
        return f"{head} ({', '.join(show(v) for v in values)})"
    return f"{head} {show(values[0])}"


def _render_path(path: str) -> str:
    return path if all(c.isalnum() or c in "._" for c in path) else f"`{path}`"
