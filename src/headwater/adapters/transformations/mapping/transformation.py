"""Saved mappings: validation against source schema and Customer Model, and running them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from headwater.adapters.transformations.mapping.compiler import Compiled, compile_expr
from headwater.adapters.transformations.mapping.functions import Fn
from headwater.adapters.transformations.mapping.parser import ExpressionError, parse_expression
from headwater.adapters.transformations.mapping.runtime import show
from headwater.adapters.transformations.mapping.types import CONVERTS_TO, T
from headwater.kernel.errors import InvalidInput, Problem
from headwater.kernel.model import CustomerModel, PropertyType
from headwater.kernel.records import Outcome, Record, TransformFailure
from headwater.kernel.schema import FieldType


def mapping_problems(mapping: object, model: CustomerModel, root: FieldType) -> list[Problem]:
    """Every problem in `mapping`, each located at its target property (with the line
    and column in the expression when the expression is at fault); empty when valid.

    `root` is the schema of the source records (from the connector, via the service).
    """
    found: list[Problem] = []
    _compile_all(mapping, model, root, found)
    return found


def compile_mapping(
    mapping: Mapping[str, str], model: CustomerModel, root: FieldType
) -> MappingTransformation:
    """Validate and compile a mapping once; the result evaluates it per record.

    Raises `InvalidInput` carrying every problem (see `mapping_problems`).
    """
    found: list[Problem] = []
    items = _compile_all(mapping, model, root, found)
    if found:
        raise InvalidInput.of(found)
    return MappingTransformation(items)


def _compile_all(
    mapping: object, model: CustomerModel, root: FieldType, found: list[Problem]
) -> tuple[tuple[str, Fn], ...]:
    if not isinstance(mapping, Mapping):
        found.append(Problem("a mapping is an object {customer_model_property: expression}"))
        return ()
    if not mapping:
        found.append(Problem("a mapping needs at least one property"))
        return ()
    targets = [str(k) for k in mapping]
    items: list[tuple[str, Fn]] = []
    for key, text in mapping.items():
        if not isinstance(key, str):
            found.append(Problem(f"property names must be strings, got {key!r}"))
            continue
        compiled = _compile_one(key, text, model, root, targets, found)
        if compiled is not None:
            items.append((key, compiled.fn))
    return tuple(items)


def _compile_one(
    key: str,
    text: object,
    model: CustomerModel,
    root: FieldType,
    targets: list[str],
    found: list[Problem],
) -> Compiled | None:
    """One property's expression compiled, or None with its problems added."""
    before = len(found)
    target = _target(key, model, found)
    for other in targets:
        if other.startswith(key + "."):
            found.append(Problem(f"overlaps with {other!r}: map the object or its fields", key))
    if not isinstance(text, str):
        found.append(Problem(f"the expression must be a string, got {show(text)}", key))
        return None
    try:
        compiled = compile_expr(parse_expression(text), root)
    except ExpressionError as exc:
        found.append(Problem(exc.detail, key, exc.line, exc.column))
        return None
    if target is not None and target not in CONVERTS_TO[compiled.type]:
        line, column = _start(text)
        article = "an" if compiled.type is T.OBJECT or compiled.type is T.ARRAY else "a"
        message = (
            f"expected a value convertible to {target.value}, got {article} {compiled.type.value}"
        )
        found.append(Problem(message, key, line, column))
    return compiled if len(found) == before else None


def _target(key: str, model: CustomerModel, found: list[Problem]) -> PropertyType | None:
    column = model.column(key)
    if column is not None:
        return column.type
    prop = model.find(key)
    if prop is None:
        known = ", ".join(c.path for c in model.columns)
        found.append(Problem(f"unknown Customer Model property (expected one of {known})", key))
        return None
    return prop.type


def _start(text: str) -> tuple[int, int]:
    for line_no, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip()
        if stripped:
            return line_no, len(line) - len(stripped) + 1
    return 1, 1


class MappingTransformation:
    """A compiled mapping (implements `Transformation`).

    Outputs are keyed by Customer Model path with plain values (``None`` included);
    the run engine converts them with `CustomerModel.to_columns`.  A record on which
    an expression fails becomes a `TransformFailure` naming the property.
    """

    def __init__(self, items: tuple[tuple[str, Fn], ...]) -> None:
        self._items = items

    @property
    def properties(self) -> list[str]:
        return [k for k, _ in self._items]

    def transform(self, records: Sequence[Record]) -> list[Outcome]:
        items = self._items
        out: list[Outcome] = []
        append = out.append
        for record in records:
            try:
                append({k: f(record) for k, f in items})
            except Exception:
                append(self._explain(record))
        return out

    def _explain(self, record: Any) -> TransformFailure:
        if not isinstance(record, dict):
            return TransformFailure(f"expected a customer object, got {show(record)}")
        for key, fn in self._items:
            try:
                fn(record)
            except Exception as exc:
                return TransformFailure(f"property {key!r}: {exc}")
        return TransformFailure("the mapping failed for this record")

    def logs(self) -> list[str]:
        return []

    def close(self) -> None:
        return None
