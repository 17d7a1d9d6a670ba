"""The service-level validation that ``POST /validate`` will answer: every problem of a
filter or a mapping, located, against the schema the connector declares."""

from __future__ import annotations

import json

import pytest

from headwater.kernel.errors import InvalidInput, Problem
from headwater.kernel.model import DEFAULT_MODEL
from headwater.services.pipelines import definition

BAD_FILTER = {
    "conditions": [
        {"property": "emial", "operator": "is", "values": ["x"]},
        {"property": "email", "operator": "is in", "values": ["x"]},
        {"property": "balance", "operator": "is", "values": ["ten"]},
    ]
}
EMPTY_GROUP = {"logical": "or", "conditions": []}
BAD_MAPPING = {"email": "lower(emial)", "created_at": "\n  livemode", "first_name": "name"}


def test_validate_filter_lists_every_problem() -> None:
    assert definition.validate_filter(BAD_FILTER) == [
        Problem("unknown property 'emial'; did you mean 'email'?", "conditions[0]"),
        Problem("unknown operator 'is in'; did you mean 'is one of'?", "conditions[1]"),
        Problem(
            "values[0]: expected a number for integer property 'balance', got 'ten'",
            "conditions[2]",
        ),
    ]
    assert definition.validate_filter({"conditions": []}) == []
    assert definition.validate_filter(None) == []


def test_validate_mapping_lists_every_problem_with_line_and_column() -> None:
    problems = definition.validate_mapping(BAD_MAPPING, DEFAULT_MODEL)
    assert [(p.location, p.line, p.column) for p in problems] == [
        ("email", 1, 7),
        ("created_at", 2, 3),
    ]
    assert definition.validate_mapping({"email": "email"}, DEFAULT_MODEL) == []


def test_saving_refuses_with_every_problem() -> None:
    with pytest.raises(InvalidInput) as caught:
        definition.check_filter(BAD_FILTER)
    assert caught.value.problems == tuple(definition.validate_filter(BAD_FILTER))
    assert caught.value.location == "conditions[0]"
    with pytest.raises(InvalidInput) as caught:
        definition.check_transformation({"kind": "mapping", "mapping": BAD_MAPPING}, DEFAULT_MODEL)
    assert [p.location for p in caught.value.problems] == ["email", "created_at"]
    assert len(caught.value.message.splitlines()) == 2


FILTER_FILE = """{
  "logical": "and",
  "conditions": [
    {"property": "email", "operator": "is not null"},
    {"property": "email", "operator": "is in", "values": ["x"]},
    {
      "logical": "or",
      "conditions": [
        {"property": "balance", "operator": "is", "values": ["ten"]}
      ]
    }
  ]
}"""


def test_filter_text_problems_carry_their_line_and_column() -> None:
    problems = definition.validate_filter_text(FILTER_FILE)
    assert [(p.location, p.line, p.column) for p in problems] == [
        ("conditions[1]", 5, 5),
        ("conditions[2].conditions[0]", 9, 9),
    ]
    assert definition.validate_filter_text(json.dumps(EMPTY_GROUP)) == []


@pytest.mark.parametrize("text", ["", " \n "])
def test_empty_texts_are_called_empty(text: str) -> None:
    assert definition.validate_filter_text(text) == [Problem("the filter is empty")]
    assert definition.validate_mapping_text(text, DEFAULT_MODEL) == [
        Problem("the mapping is empty")
    ]


def test_broken_json_is_located() -> None:
    [problem] = definition.validate_filter_text('{\n  "conditions": [,]\n}')
    assert (problem.line, problem.column) == (2, 18)
    assert problem.message.startswith("not valid JSON (")
    [problem] = definition.validate_mapping_text('{"email": "email",}', DEFAULT_MODEL)
    assert problem.message.startswith("not valid JSON (")
    assert definition.validate_mapping_text('{"email": "email"}', DEFAULT_MODEL) == []


@pytest.mark.parametrize(
    ("kind", "source", "line", "message"),
    [
        ("javascript", "function transform(c) {\n  return {;\n}", 2, "SyntaxError"),
        ("python", "def transform(c):\n    return {\n", 2, "SyntaxError"),
        ("python", "x = 1\n", None, "the code does not define a function named transform"),
    ],
)
def test_a_code_error_at_save_names_the_transformation_and_its_line(
    kind: str, source: str, line: int | None, message: str
) -> None:
    """Saving or previewing code that does not compile answered field 'line 2' (the API's
    error document names a field of the request); it is 'transformation', the line in
    the problem and the message, as POST /validate has it."""
    with pytest.raises(InvalidInput) as caught:
        definition.check_transformation({"kind": kind, "source": source}, DEFAULT_MODEL)
    [problem] = caught.value.problems
    assert caught.value.location == problem.location == "transformation"
    assert problem.line == line
    assert problem.message.startswith(message)
    where = f"line {line}: " if line else ""
    assert caught.value.message == f"transformation: {where}{problem.message}"
