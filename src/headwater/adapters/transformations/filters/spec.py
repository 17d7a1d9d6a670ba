"""Parsing a filter's JSON into checked, typed nodes (the single place it is validated).

Validation walks the whole filter and reports every problem it finds, each located
(``conditions[0].conditions[2]``), rather than stopping at the first.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from headwater.adapters.transformations.filters.operators import (
    OPERATORS,
    Operator,
    empty_range,
    operators_for,
)
from headwater.adapters.transformations.filters.values import BadValue, show, typed
from headwater.kernel.errors import InvalidInput, Problem
from headwater.kernel.schema import FieldType, leaf_paths, lookup_keys, split_path


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
# What people write for an operator -> the operator it means (checked before difflib,
# which would take "is in" for "is not").
_SYNONYMS = {
    "in": "is one of",
    "is in": "is one of",
    "one of": "is one of",
    "any of": "is one of",
    "is any of": "is one of",
    "not in": "is not one of",
    "is not in": "is not one of",
    "none of": "is not one of",
    "=": "is",
    "==": "is",
    "eq": "is",
    "equals": "is",
    "equal to": "is",
    "is equal to": "is",
    "!=": "is not",
    "<>": "is not",
    "ne": "is not",
    "not equals": "is not",
    "does not equal": "is not",
    "is not equal to": "is not",
    "<": "is less than",
    "lt": "is less than",
    "less than": "is less than",
    "<=": "is less than or equal to",
    ">": "is greater than",
    "gt": "is greater than",
    "greater than": "is greater than",
    ">=": "is greater than or equal to",
    "between": "is between",
    "includes": "contains",
    "has": "contains",
    "like": "contains",
    "not contains": "does not contain",
    "startswith": "starts with",
    "begins with": "starts with",
    "endswith": "ends with",
    "before": "is before",
    "after": "is after",
    "since": "is on or after",
    "until": "is on or before",
    "true": "is true",
    "false": "is false",
    "empty": "is empty",
    "null": "is null",
    "is none": "is null",
    "is nil": "is null",
    "not null": "is not null",
    "is not none": "is not null",
    "is set": "exists",
    "present": "exists",
    "missing": "does not exist",
    "is missing": "does not exist",
    "not exists": "does not exist",
}


def problems(data: object, root: FieldType) -> list[Problem]:
    """Every problem in a filter (empty when it is valid)."""
    found: list[Problem] = []
    _parse(data, root, found)
    return found


def parse(data: object, root: FieldType) -> Group | None:
    """Check a filter and return its typed form; None means "every customer".

    Raises `InvalidInput` carrying every problem found.
    """
    found: list[Problem] = []
    group = _parse(data, root, found)
    if found:
        raise InvalidInput.of(found)
    return group


def _parse(data: object, root: FieldType, found: list[Problem]) -> Group | None:
    if data is None:
        return None
    if isinstance(data, Mapping) and not data:
        return None
    group = _group(data, "", root, found, top=True)
    return group if group is not None and group.items else None


def _join(where: str, sub: str) -> str:
    return f"{where}.{sub}" if where else sub


#: How deep groups may nest (the console's editor offers a few levels; every layer
#: costs a level of recursion here and when the filter is shown or serialised).
MAX_DEPTH = 16


def _group(
    data: object,
    where: str,
    root: FieldType,
    found: list[Problem],
    top: bool = False,
    depth: int = 1,
) -> Group | None:
    if depth > MAX_DEPTH:
        found.append(Problem(f"groups nest more than {MAX_DEPTH} levels deep", where))
        return None
    if not isinstance(data, Mapping):
        message = 'a filter is an object {"logical": "and"|"or", "conditions": [...]}'
        found.append(Problem(message, where or None))
        return None
    for extra in sorted(set(map(str, data)) - _GROUP_KEYS):
        found.append(Problem(f"unknown key {brief(extra)} in a filter group", where or None))
    logical = data.get("logical", "and")
    if logical not in ("and", "or"):
        message = f'"logical" must be "and" or "or", got {brief(logical)}'
        found.append(Problem(message, _join(where, "logical")))
    conditions = data.get("conditions")
    if not isinstance(conditions, list):
        found.append(Problem('"conditions" must be a list', _join(where, "conditions")))
        return None
    if not conditions and not top:
        found.append(Problem("a nested group needs at least one condition", where))
    items: list[Condition | Group] = []
    for i, item in enumerate(conditions):
        loc = _join(where, f"conditions[{i}]")
        if isinstance(item, Mapping) and ("conditions" in item or "logical" in item):
            node: Condition | Group | None = _group(item, loc, root, found, depth=depth + 1)
        else:
            node = _condition(item, loc, root, found)
        if node is not None:
            items.append(node)
    return Group(str(logical), tuple(items))


def _condition(data: object, where: str, root: FieldType, found: list[Problem]) -> Condition | None:
    if not isinstance(data, Mapping):
        message = 'a condition is an object {"property": ..., "operator": ..., "values": [...]}'
        found.append(Problem(message, where))
        return None
    before = len(found)
    for extra in sorted(set(map(str, data)) - _CONDITION_KEYS):
        found.append(Problem(f"unknown key {brief(extra)} in a condition", where))
    prop = data.get("property")
    keys = split_path(prop, root) if isinstance(prop, str) and prop else None
    field = None if keys is None else lookup_keys(keys, root)
    if not isinstance(prop, str) or not prop:
        found.append(Problem('"property" must be a non-empty string', where))
    elif keys is None or field is None:
        found.append(Problem(f"unknown property {brief(prop)}{_did_you_mean(prop, root)}", where))
    name = data.get("operator")
    op = OPERATORS.get(name) if isinstance(name, str) else None
    if op is None:
        found.append(Problem(f"unknown operator {brief(name)}{suggest_operator(name)}", where))
    raw = data.get("values", [])
    if not isinstance(raw, list):
        found.append(Problem('"values" must be a list', where))
    if op is None or field is None or keys is None or not isinstance(raw, list):
        return None
    if field.kind not in op.kinds:
        allowed = ", ".join(f'"{n}"' for n in operators_for(field.kind))
        message = (
            f'operator "{op.name}" does not apply to {field.describe()} property "{prop}" '
            f"(use one of {allowed})"
        )
        found.append(Problem(message, where))
        return None
    values = _values(raw, op, field, str(prop), where, found)
    if len(found) > before:
        return None
    return Condition(str(prop), tuple(keys), field, op, values)


def _values(
    raw: list[Any], op: Operator, field: FieldType, prop: str, where: str, found: list[Problem]
) -> tuple[Any, ...]:
    n = len(raw)
    if op.arity == 0 and n:
        found.append(Problem(f'operator "{op.name}" takes no values, got {n}', where))
    if op.arity > 0 and n != op.arity:
        need = "1 value" if op.arity == 1 else f"{op.arity} values"
        found.append(Problem(f'operator "{op.name}" needs {need}, got {n}', where))
    if op.arity < 0 and not n:
        found.append(Problem(f'operator "{op.name}" needs at least one value', where))
    out = []
    for i, value in enumerate(raw):
        try:
            out.append(typed(value, field, element=op.element))
        except BadValue as exc:
            message = (
                f"values[{i}]: {exc} for {field.describe()} property {brief(prop)}, "
                f"got {brief(value)}"
            )
            found.append(Problem(message, where))
    if op.arity == 2 and len(out) == 2 and empty_range(*out):
        message = (
            f'operator "{op.name}" needs the low bound first, got {show(out[0])} and '
            f"{show(out[1])} (no value is in that range)"
        )
        found.append(Problem(message, where))
    return tuple(out)


#: Longest quote of a user's value in a problem (the API sends problems back whole).
MAX_QUOTE = 60


def brief(value: object) -> str:
    """``repr(value)``, cut to `MAX_QUOTE` characters."""
    try:
        text = repr(value)
    except RecursionError:  # nested past the interpreter's limit
        text = f"a {type(value).__name__} nested too deep to show"
    return text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE] + "…"


def suggest_operator(word: object) -> str:
    """``; did you mean 'is one of'?`` for a misspelt or foreign operator, else ``""``."""
    if not isinstance(word, str):
        return ""
    plain = " ".join(word.lower().replace("_", " ").split())
    meant = plain if plain in OPERATORS else _SYNONYMS.get(plain)
    if meant is None:
        close = difflib.get_close_matches(plain, list(OPERATORS), n=1)
        meant = close[0] if close else None
    return f"; did you mean {meant!r}?" if meant else ""


def _nearest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _did_you_mean(path: str, root: FieldType) -> str:
    return _nearest(path, [p for p, _ in leaf_paths(root)])
