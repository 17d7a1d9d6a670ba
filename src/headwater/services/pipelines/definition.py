"""A pipeline's definition: its filter and its transformation, validated and compiled.

Stored transformation shapes (exactly one kind):
``{"kind": "mapping", "mapping": {path: expression}}``,
``{"kind": "javascript", "source": "..."}``, ``{"kind": "python", "source": "..."}``.

Filters and mappings are checked against the schema of the records the pipeline
reads, which the connector declares (`source_schema`); the transformations never
reach into a connector for it.  `validate_filter` and `validate_mapping` return
every problem found (what ``POST /validate`` answers); the ``check_*`` functions
raise `InvalidInput` carrying all of them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import orjson

from headwater.adapters.connectors.stripe.schema import STRIPE_CUSTOMER_SCHEMA
from headwater.adapters.transformations.contract import Transformation
from headwater.adapters.transformations.filters import (
    compile_filter,
    filter_problems,
    render_filter,
)
from headwater.adapters.transformations.javascript import compile_javascript, validate_javascript
from headwater.adapters.transformations.mapping import (
    compile_mapping,
    mapping_problems,
    suggest_mapping,
)
from headwater.adapters.transformations.python import compile_python, validate_python
from headwater.kernel import json_text
from headwater.kernel.errors import InvalidInput, Problem
from headwater.kernel.json_positions import value_positions
from headwater.kernel.model import CustomerModel
from headwater.kernel.records import Record
from headwater.kernel.schema import FieldType

KINDS = ("mapping", "javascript", "python")


def source_schema() -> FieldType:
    """The schema of the records pipelines read.  Every connection today is a Stripe
    connection, whose connector declares the customer it returns."""
    return STRIPE_CUSTOMER_SCHEMA


def validate_filter(data: object) -> list[Problem]:
    """Every problem in a filter, each located (``conditions[1]``); empty if valid."""
    return filter_problems(data, source_schema())


def validate_filter_text(text: str) -> list[Problem]:
    """`validate_filter` for a filter file's text: an empty text and invalid JSON are
    problems too, and each problem gets the line and column of its condition."""
    data, problems = _parse_json(text, "filter")
    if problems:
        return problems
    positions = value_positions(text)
    return [_positioned(problem, positions) for problem in validate_filter(data)]


def validate_mapping_text(text: str, model: CustomerModel) -> list[Problem]:
    """`validate_mapping` for a mapping file's text (an empty text and invalid JSON are
    problems too); lines and columns stay those inside each expression."""
    data, problems = _parse_json(text, "mapping")
    return problems or validate_mapping(data, model)


def _parse_json(text: str, what: str) -> tuple[Any, list[Problem]]:
    if not text.strip():
        return None, [Problem(f"the {what} is empty")]
    try:
        return json_text.loads(text), []
    except json.JSONDecodeError as exc:
        return None, [Problem(f"not valid JSON ({exc.msg})", None, exc.lineno, exc.colno)]
    except RecursionError:  # thousands of nested brackets: not a definition
        return None, [Problem(f"the {what} is nested too deeply to read")]


def _positioned(problem: Problem, positions: dict[str, tuple[int, int]]) -> Problem:
    """The problem with the line and column of its location (or of the nearest
    enclosing value that has one)."""
    where = problem.location or ""
    while where not in positions and where:
        where = where[: max(where.rfind("."), where.rfind("["), 0)]
    line, column = positions.get(where, (None, None))
    return replace(problem, line=line, column=column)


def validate_mapping(mapping: object, model: CustomerModel) -> list[Problem]:
    """Every problem in a mapping, each at its property with the line and column in
    its expression when known; empty if valid."""
    return mapping_problems(mapping, model, source_schema())


def filter_text(data: object) -> str:
    """A saved filter as readable text (``""`` for none)."""
    # Lists of pipelines render the same few filters on every request: remember them.
    try:
        canonical = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # what orjson refuses (an integer past 64 bits): the slow way
        canonical = json.dumps(data, sort_keys=True, default=str).encode()
    return _filter_text(canonical)


@functools.lru_cache(maxsize=1024)
def _filter_text(canonical: bytes) -> str:
    return render_filter(json.loads(canonical), source_schema())


def suggested_mapping(model: CustomerModel) -> dict[str, str]:
    """The mapping proposed for `model` from the source records' obvious fields."""
    return suggest_mapping(model, source_schema())


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
        problems = validate_mapping(mapping, model)
        if problems:
            raise InvalidInput.of(problems)
        return {"kind": "mapping", "mapping": dict(mapping)}  # type: ignore[arg-type]
    source = spec.get("source")
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput(f"a {kind} transformation needs its source code", "transformation")
    try:
        if kind == "javascript":
            validate_javascript(source)
        else:
            validate_python(source)
    except InvalidInput as exc:  # located "line N": the field is the transformation
        raise InvalidInput.of([_code_problem(p) for p in exc.problems]) from None
    return {"kind": kind, "source": source}


def check_filter(data: object) -> dict[str, Any] | None:
    """Validate a filter at save time (`InvalidInput` with every problem) and return
    it, or None for "every customer"."""
    if data is None or data == {}:
        return None
    problems = validate_filter(data)
    if problems:
        raise InvalidInput.of(problems)
    assert isinstance(data, dict)
    return data


def compile_transformation(spec: Mapping[str, Any], model: CustomerModel) -> Transformation:
    kind = spec["kind"]
    if kind == "mapping":
        return compile_mapping(dict(spec["mapping"]), model, source_schema())
    if kind == "javascript":
        return compile_javascript(spec["source"])
    return compile_python(spec["source"])


def compile_predicate(data: dict[str, Any] | None) -> Callable[[Record], bool]:
    return compile_filter(data, source_schema())


_ABSENT: Any = object()


def validate_definition(
    model: CustomerModel,
    *,
    filter: object = _ABSENT,
    mapping: object = _ABSENT,
    transformation: object = _ABSENT,
) -> list[Problem]:
    """Every problem of the parts given (what ``POST /validate`` answers), each located
    from the top of the request: ``filter.conditions[1]``, ``mapping.email`` (with the
    line and column inside its expression), ``transformation`` (with the line of a
    code error).  A part not given is not checked; ``None`` is "no filter"."""
    found: list[Problem] = []
    if filter is not _ABSENT:
        found += [_under("filter", p) for p in validate_filter(filter)]
    if mapping is not _ABSENT:
        found += [_under("mapping", p) for p in validate_mapping(mapping, model)]
    if transformation is not _ABSENT:
        found += _transformation_problems(transformation, model)
    return found


def _under(prefix: str, problem: Problem) -> Problem:
    where = problem.location
    if not where:
        return replace(problem, location=prefix)
    joiner = "" if where.startswith("[") else "."
    return replace(problem, location=f"{prefix}{joiner}{where}")


def _transformation_problems(spec: object, model: CustomerModel) -> list[Problem]:
    if isinstance(spec, Mapping) and spec.get("kind") == "mapping":
        problems = validate_mapping(spec.get("mapping"), model)
        return [_under("transformation.mapping", p) for p in problems]
    try:
        check_transformation(spec, model)
    except InvalidInput as exc:
        return [_code_problem(p) for p in exc.problems]
    return []


def _code_problem(problem: Problem) -> Problem:
    """A code error located ``line N`` becomes ``transformation`` at line N."""
    where = problem.location or ""
    if where.startswith("line ") and where[5:].isdigit():
        return replace(problem, location="transformation", line=problem.line or int(where[5:]))
    if where == "transformation":
        return replace(problem, location="transformation")
    return _under("transformation", problem)
