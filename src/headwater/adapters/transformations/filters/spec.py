"""Parsing a filter's JSON into checked, typed nodes (the single place it is validated)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from headwater.adapters.connectors.stripe.schema import (
    STRIPE_CUSTOMER_SCHEMA,
    FieldType,
    leaf_paths,
    lookup_keys,
    split_path,
)
from headwater.adapters.transformations.filters.operators import (
    OPERATORS,
    Operator,
    operators_for,
)
from headwater.adapters.transformations.filters.values import BadValue, typed
from headwater.kernel.errors import InvalidInput


@dataclass(frozen=True)
class Condition:
    property: str
    keys: tuple[str, ...]  # record keys the path reaches (``metadata`` keys may hold dots)
    field: FieldType
    operator: Operator
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Group:
    logical: str  # "and" | "or"
    items: tuple[Condition | Group, ...]


_GROUP_KEYS = {"logical", "conditions"}
_CONDITION_KEYS = {"property", "operator", "values"}


def parse(data: object, root: FieldType = STRIPE_CUSTOMER_SCHEMA) -> Group | None:
    """Check a filter and return its typed form; None means "every customer"."""
    if data is None:
        return None
    if isinstance(data, Mapping) and not data:
        return None
    group = _group(data, "", root, top=True)
    return group if group.items else None


def _join(where: str, sub: str) -> str:
    return f"{where}.{sub}" if where else sub


def _group(data: object, where: str, root: FieldType, top: bool = False) -> Group:
    if not isinstance(data, Mapping):
        raise InvalidInput(
            'a filter is an object {"logical": "and"|"or", "conditions": [...]}', where or None
        )
    extra = sorted(set(map(str, data)) - _GROUP_KEYS)
    if extra:
        raise InvalidInput(f"unknown key {extra[0]!r} in a filter group", where or None)
    logical = data.get("logical", "and")
    if logical not in ("and", "or"):
        raise InvalidInput(
            f'"logical" must be "and" or "or", got {logical!r}', _join(where, "logical")
        )
    conditions = data.get("conditions")
    if not isinstance(conditions, list):
        raise InvalidInput('"conditions" must be a list', _join(where, "conditions"))
    if not conditions and not top:
        raise InvalidInput("a nested group needs at least one condition", where)
    items: list[Condition | Group] = []
    for i, item in enumerate(conditions):
        loc = _join(where, f"conditions[{i}]")
        if isinstance(item, Mapping) and ("conditions" in item or "logical" in item):
            items.append(_group(item, loc, root))
        else:
            items.append(_condition(item, loc, root))
    return Group(str(logical), tuple(items))


def _condition(data: object, where: str, root: FieldType) -> Condition:
    if not isinstance(data, Mapping):
        raise InvalidInput(
            'a condition is an object {"property": ..., "operator": ..., "values": [...]}',
            where,
        )
    extra = sorted(set(map(str, data)) - _CONDITION_KEYS)
    if extra:
        raise InvalidInput(f"unknown key {extra[0]!r} in a condition", where)
    prop = data.get("property")
    if not isinstance(prop, str) or not prop:
        raise InvalidInput('"property" must be a non-empty string', where)
    keys = split_path(prop, root)
    field = None if keys is None else lookup_keys(keys, root)
    if keys is None or field is None:
        raise InvalidInput(f"unknown property {prop!r}{_did_you_mean(prop, root)}", where)
    name = data.get("operator")
    op = OPERATORS.get(name) if isinstance(name, str) else None
    if op is None:
        raise InvalidInput(f"unknown operator {name!r}{_nearest(name, list(OPERATORS))}", where)
    if field.kind not in op.kinds:
        allowed = ", ".join(f'"{n}"' for n in operators_for(field.kind))
        raise InvalidInput(
            f'operator "{op.name}" does not apply to {field.describe()} property "{prop}" '
            f"(use one of {allowed})",
            where,
        )
    values = _values(data.get("values", []), op, field, prop, where)
    return Condition(prop, tuple(keys), field, op, values)


def _values(raw: object, op: Operator, field: FieldType, prop: str, where: str) -> tuple[Any, ...]:
    if not isinstance(raw, list):
        raise InvalidInput('"values" must be a list', where)
    n = len(raw)
    if op.arity == 0 and n:
        raise InvalidInput(f'operator "{op.name}" takes no values, got {n}', where)
    if op.arity > 0 and n != op.arity:
        need = "1 value" if op.arity == 1 else f"{op.arity} values"
        raise InvalidInput(f'operator "{op.name}" needs {need}, got {n}', where)
    if op.arity < 0 and not n:
        raise InvalidInput(f'operator "{op.name}" needs at least one value', where)
    out = []
    for i, value in enumerate(raw):
        try:
            out.append(typed(value, field, element=op.element))
        except BadValue as exc:
            raise InvalidInput(
                f"values[{i}]: {exc} for {field.describe()} property {prop!r}, got {value!r}",
                where,
            ) from None
    return tuple(out)


def _nearest(word: object, choices: list[str]) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _did_you_mean(path: str, root: FieldType) -> str:
    return _nearest(path, [p for p, _ in leaf_paths(root)])
