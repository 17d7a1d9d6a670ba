"""A pipeline's definition: its filter and its transformation, validated and compiled.

Stored transformation shapes (exactly one kind):
``{"kind": "mapping", "mapping": {path: expression}}``,
``{"kind": "javascript", "source": "..."}``, ``{"kind": "python", "source": "..."}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from headwater.adapters.transformations.contract import Transformation
from headwater.adapters.transformations.filters import compile_filter, validate_filter
from headwater.adapters.transformations.mapping import compile_mapping, validate_mapping
from headwater.adapters.transformations.python import compile_python, validate_python
from headwater.kernel.errors import InvalidInput
from headwater.kernel.model import CustomerModel
from headwater.kernel.records import Record

KINDS = ("mapping", "javascript", "python")
# The JavaScript runtime is imported where it is used: loading V8 costs ~11 MB of
# memory that pipelines with a mapping or a Python transformation never need.


def check_transformation(spec: object, model: CustomerModel) -> dict[str, Any]:
    """Validate a transformation spec at save time and return it normalised."""
    if not isinstance(spec, Mapping):
        raise InvalidInput("must be an object with a 'kind'", "transformation")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise InvalidInput(
            f"kind must be one of {', '.join(KINDS)}; got {kind!r}", "transformation"
        )
    if kind == "mapping":
        mapping = spec.get("mapping")
        validate_mapping(mapping, model)
        return {"kind": "mapping", "mapping": dict(mapping)}  # type: ignore[arg-type]
    source = spec.get("source")
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput(f"a {kind} transformation needs its source code", "transformation")
    if kind == "javascript":
        from headwater.adapters.transformations.javascript import validate_javascript

        validate_javascript(source)
    else:
        validate_python(source)
    return {"kind": kind, "source": source}


def check_filter(data: object) -> dict[str, Any] | None:
    if data is None or data == {}:
        return None
    validate_filter(data)
    assert isinstance(data, dict)
    return data


def compile_transformation(spec: Mapping[str, Any], model: CustomerModel) -> Transformation:
    kind = spec["kind"]
    if kind == "mapping":
        return compile_mapping(dict(spec["mapping"]), model)
    if kind == "javascript":
        from headwater.adapters.transformations.javascript import compile_javascript

        return compile_javascript(spec["source"])
    return compile_python(spec["source"])


def compile_predicate(data: dict[str, Any] | None) -> Callable[[Record], bool]:
    return compile_filter(data)
