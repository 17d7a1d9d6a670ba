"""The service-level validation that ``POST /validate`` will answer: every problem of a
filter or a mapping, located, against the schema the connector declares."""

from __future__ import annotations

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
