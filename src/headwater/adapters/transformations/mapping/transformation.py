"""Saved mappings: validation against source schema and Customer Model, and running them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from headwater.adapters.connectors.stripe.schema import STRIPE_CUSTOMER_SCHEMA, FieldType
from headwater.adapters.transformations.mapping.compiler import Compiled, compile_expr
from headwater.adapters.transformations.mapping.functions import Fn
from headwater.adapters.transformations.mapping.parser import ExpressionError, parse_expression
from headwater.adapters.transformations.mapping.runtime import show
from headwater.adapters.transformations.mapping.types import CONVERTS_TO, T
from headwater.kernel.errors import InvalidInput
from headwater.kernel.model import CustomerModel, PropertyType
from headwater.kernel.records import Outcome, Record, TransformFailure


def validate_mapping(mapping: object, model: CustomerModel) -> None:
    """Raise `InvalidInput` located at the target property (message: line, column, what
    was expected) unless every expression parses, type-checks and can convert."""
    _compile_all(mapping, model, STRIPE_CUSTOMER_SCHEMA)


def compile_mapping(
    mapping: Mapping[str, str], model: CustomerModel, root: FieldType = STRIPE_CUSTOMER_SCHEMA
) -> MappingTransformation:
    """Validate and compile a mapping once; the result evaluates it per record."""
    return MappingTransformation(_compile_all(mapping, model, root))


def _compile_all(
    mapping: object, model: CustomerModel, root: FieldType
) -> tuple[tuple[str, Fn], ...]:
    if not isinstance(mapping, Mapping):
        raise InvalidInput("a mapping is an object {customer_model_property: expression}")
    if not mapping:
        raise InvalidInput("a mapping needs at least one property")
    targets = [str(k) for k in mapping]
    items: list[tuple[str, Fn]] = []
    for key, text in mapping.items():
        if not isinstance(key, str):
            raise InvalidInput(f"property names must be strings, got {key!r}")
        target = _target(key, model)
        _check_overlap(key, targets)
        if not isinstance(text, str):
            raise InvalidInput(f"the expression must be a string, got {show(text)}", key)
        try:
            compiled = compile_expr(parse_expression(text), root)
        except ExpressionError as exc:
            raise InvalidInput(str(exc), key) from None
        _check_target(key, text, compiled, target)
        items.append((key, compiled.fn))
    return tuple(items)


def _target(key: str, model: CustomerModel) -> PropertyType:
    column = model.column(key)
    if column is not None:
        return column.type
    prop = model.find(key)
    if prop is None:
        known = ", ".join(c.path for c in model.columns)
        raise InvalidInput(f"unknown Customer Model property (expected one of {known})", key)
    return prop.type


def _check_overlap(key: str, targets: list[str]) -> None:
    for other in targets:
        if other.startswith(key + "."):
            raise InvalidInput(f"overlaps with {other!r}: map the object or its fields", key)


def _check_target(key: str, text: str, compiled: Compiled, target: PropertyType) -> None:
    if target in CONVERTS_TO[compiled.type]:
        return
    line, column = _start(text)
    raise InvalidInput(
        f"line {line}, column {column}: expected a value convertible to {target.value}, "
        f"got {'an' if compiled.type is T.OBJECT or compiled.type is T.ARRAY else 'a'} "
        f"{compiled.type.value}",
        key,
    )


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
