"""Filters: every operator on every type it applies to, null semantics, errors, rendering."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.adapters.connectors.stripe.schema import STRIPE_CUSTOMER_SCHEMA as SCHEMA
from headwater.adapters.transformations.filters import (
    compile_filter,
    filter_problems,
    render_filter,
)
from headwater.adapters.transformations.filters.operators import OPERATORS, operators_for
from headwater.adapters.transformations.filters.spec import MAX_DEPTH
from headwater.kernel.errors import InvalidInput, Problem
from headwater.kernel.records import Record
from headwater.kernel.schema import FieldType, Kind, lookup

DAY = 86400
JAN1 = 1704067200  # 2024-01-01T00:00:00Z

CUSTOMER: dict[str, Any] = {
    "id": "cus_1",
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "balance": 150,
    "delinquent": False,
    "livemode": True,
    "created": JAN1 + 3600,
    "address": {"city": "Rome", "country": "IT", "line2": None},
    "shipping": {},
    "metadata": {"plan": "pro", "plan.tier": "gold"},
    "preferred_locales": ["it", "en"],
    "tax_exempt": "none",
    "discount": {"coupon": {"percent_off": 12.5}},
    "invoice_settings": {"custom_fields": []},
}


def cond(prop: str, op: str, *values: Any) -> dict[str, Any]:
    return {
        "logical": "and",
        "conditions": [{"property": prop, "operator": op, "values": list(values)}],
    }


def matches(prop: str, op: str, *values: Any, record: dict[str, Any] | None = None) -> bool:
    return compile_filter(cond(prop, op, *values), SCHEMA)(CUSTOMER if record is None else record)


CASES: list[tuple[str, str, tuple[Any, ...], bool]] = [
    # string
    ("address.country", "is", ("IT",), True),
    ("address.country", "is", ("FR",), False),
    ("address.country", "is not", ("FR",), True),
    ("address.country", "is one of", ("FR", "IT"), True),
    ("address.country", "is not one of", ("FR", "IT"), False),
    ("email", "contains", ("@example",), True),
    ("email", "does not contain", ("@example",), False),
    ("email", "starts with", ("ada",), True),
    ("email", "starts with", ("Ada",), False),  # case-sensitive
    ("email", "ends with", (".com",), True),
    ("email", "is empty", (), False),
    ("email", "is not empty", (), True),
    ("tax_exempt", "is", ("none",), True),
    # integer
    ("balance", "is", (150,), True),
    ("balance", "is not", (150,), False),
    ("balance", "is less than", (151,), True),
    ("balance", "is less than", (150,), False),
    ("balance", "is less than or equal to", (150,), True),
    ("balance", "is greater than", (149,), True),
    ("balance", "is greater than", (150,), False),
    ("balance", "is greater than or equal to", ("150",), True),  # numeric string typed
    ("balance", "is between", (100, 150), True),
    ("balance", "is between", (151, 200), False),
    ("balance", "is not between", (151, 200), True),
    ("balance", "is one of", (1, 150), True),
    ("balance", "is not one of", (1, 150), False),
    # number
    ("discount.coupon.percent_off", "is greater than", (12,), True),
    ("discount.coupon.percent_off", "is", (12.5,), True),
    ("discount.coupon.percent_off", "is between", (0, 12.4), False),
    # boolean
    ("livemode", "is true", (), True),
    ("livemode", "is false", (), False),
    ("delinquent", "is false", (), True),
    ("delinquent", "is", (False,), True),
    ("delinquent", "is not", ("true",), True),
    # timestamp: dates are whole UTC days, datetimes instants
    ("created", "is", ("2024-01-01",), True),
    ("created", "is", ("2024-01-01T01:00:00Z",), True),
    ("created", "is", ("2024-01-01T01:00:01Z",), False),
    ("created", "is before", ("2024-01-01",), False),
    ("created", "is before", ("2024-01-02",), True),
    ("created", "is on or before", ("2024-01-01",), True),
    ("created", "is on or before", ("2024-01-01T00:30:00+00:00",), False),
    ("created", "is after", ("2024-01-01",), False),
    ("created", "is after", ("2023-12-31",), True),
    ("created", "is after", ("2024-01-01T00:59:59",), True),
    ("created", "is on or after", ("2024-01-01",), True),
    ("created", "is on or after", ("2024-01-01T02:00:00+01:00",), True),
    ("created", "is between", ("2024-01-01", "2024-01-01"), True),
    ("created", "is between", ("2024-01-02", "2024-02-01"), False),
    ("created", "is not between", ("2024-01-02", "2024-02-01"), True),
    # array
    ("preferred_locales", "contains", ("it",), True),
    ("preferred_locales", "does not contain", ("fr",), True),
    ("preferred_locales", "is empty", (), False),
    ("invoice_settings.custom_fields", "is empty", (), True),
    # map, object, metadata keys
    ("metadata", "is not empty", (), True),
    ("metadata.plan", "is", ("pro",), True),
    ("metadata.plan.tier", "is", ("gold",), True),
    ("metadata.missing", "is null", (), True),
    ("shipping", "is empty", (), True),
    ("address", "is not null", (), True),
    # null and missing
    ("address.line2", "exists", (), True),
    ("address.line2", "is null", (), True),
    ("address.state", "exists", (), False),
    ("address.state", "does not exist", (), True),
    ("address.state", "is null", (), True),
    ("address.state", "is not null", (), False),
    ("phone", "is", ("1",), False),
    ("phone", "is not", ("1",), True),  # negatives complement positives
    ("phone", "contains", ("1",), False),
    ("phone", "does not contain", ("1",), True),
    ("phone", "is empty", (), True),
    ("phone", "is one of", ("1",), False),
    ("phone", "is not one of", ("1",), True),
    ("shipping.address.city", "is null", (), True),
    ("shipping.address.city", "exists", (), False),
    ("discount.end", "is before", ("2030-01-01",), False),
    ("discount.end", "is not between", ("2000-01-01", "2030-01-01"), True),
]


@pytest.mark.parametrize(("prop", "op", "values", "expected"), CASES)
def test_operator_table(prop: str, op: str, values: tuple[Any, ...], expected: bool) -> None:
    assert matches(prop, op, *values) is expected


def test_every_operator_is_tested() -> None:
    assert {c[1] for c in CASES} == set(OPERATORS)


def test_unexpected_record_types_never_match_or_raise() -> None:
    odd = {"balance": "150", "address": "Rome", "email": 5, "created": "soon", "metadata": []}
    assert not matches("balance", "is greater than", 1, record=odd)
    assert not matches("address.country", "is", "IT", record=odd)
    assert matches("address.country", "does not exist", record=odd)
    assert not matches("email", "starts with", "a", record=odd)
    assert not matches("created", "is after", "2000-01-01", record=odd)
    assert not matches("metadata.plan", "is one of", "pro", record=odd)
    assert not matches("balance", "is one of", 150, record={"balance": [150]})


def test_groups_nest() -> None:
    f = {
        "logical": "or",
        "conditions": [
            {"property": "balance", "operator": "is less than", "values": [0]},
            {
                "logical": "and",
                "conditions": [
                    {"property": "address.country", "operator": "is", "values": ["IT"]},
                    {"property": "metadata.plan", "operator": "is", "values": ["pro"]},
                ],
            },
        ],
    }
    keep = compile_filter(f, SCHEMA)
    assert keep(CUSTOMER)
    assert not keep({**CUSTOMER, "metadata": {}})
    assert keep({"balance": -1})


def test_a_group_of_many_conditions_is_evaluated_without_deep_recursion() -> None:
    """A group of 3,000 conditions (each a level of nested calls before: every record
    raised RecursionError) keeps and drops as its logic says."""
    plans = [
        {"property": "metadata.plan", "operator": "is", "values": [f"p{i}"]} for i in range(3000)
    ]
    anyone = compile_filter({"logical": "or", "conditions": plans}, SCHEMA)
    everyone = compile_filter({"logical": "and", "conditions": plans[:1] * 3000}, SCHEMA)
    assert anyone({**CUSTOMER, "metadata": {"plan": "p2999"}})
    assert not anyone({**CUSTOMER, "metadata": {"plan": "x"}})
    assert everyone({**CUSTOMER, "metadata": {"plan": "p0"}})
    assert not everyone({**CUSTOMER, "metadata": {"plan": "p1"}})


def test_groups_nested_too_deep_are_refused_where_they_start() -> None:
    """Past `MAX_DEPTH` levels of groups a filter is refused, located (it was saved,
    and every answer listing it failed to serialise it)."""
    condition = {"property": "balance", "operator": "is less than", "values": [0]}
    nested: dict[str, Any] = {"logical": "and", "conditions": [condition]}
    for _ in range(MAX_DEPTH - 1):
        nested = {"logical": "and", "conditions": [nested]}
    assert compile_filter(nested, SCHEMA)({"balance": -1})
    deeper = {"logical": "and", "conditions": [nested]}
    [problem] = filter_problems(deeper, SCHEMA)
    assert problem.location == ".".join(["conditions[0]"] * MAX_DEPTH)
    assert str(MAX_DEPTH) in problem.message
    hostile: dict[str, Any] = {"logical": "and", "conditions": [condition]}
    for _ in range(5000):
        hostile = {"logical": "and", "conditions": [hostile]}
    assert len(filter_problems(hostile, SCHEMA)) == 1


def test_a_date_at_the_end_of_the_calendar_is_refused_where_it_is() -> None:
    """``is before "9999-12-31"`` raised OverflowError (the day after it is past the
    calendar's end): a 500 where a located problem was due."""
    for value in ("9999-12-31",):
        spec = {"conditions": [{"property": "created", "operator": "is before", "values": [value]}]}
        problems = filter_problems(spec, SCHEMA)
        assert [p.location for p in problems] == ["conditions[0]"], value
        assert "out of range" in problems[0].message


@pytest.mark.parametrize("empty", [None, {}, {"logical": "and", "conditions": []}])
def test_no_filter_keeps_everyone(empty: Any) -> None:
    assert compile_filter(empty, SCHEMA)({}) is True
    assert render_filter(empty, SCHEMA) == ""


ERRORS = [
    (
        {
            "conditions": [
                cond("email", "is", "a")["conditions"][0],
                {"property": "balance", "operator": "starts with", "values": ["1"]},
            ]
        },
        'conditions[1]: operator "starts with" does not apply to integer property "balance"',
    ),
    (
        {"conditions": [{"property": "adress.country", "operator": "is", "values": ["IT"]}]},
        "conditions[0]: unknown property 'adress.country'; did you mean 'address.country'?",
    ),
    (
        {"conditions": [{"property": "email", "operator": "equals", "values": ["x"]}]},
        "conditions[0]: unknown operator 'equals'",
    ),
    (
        {"conditions": [{"property": "email", "operator": "is", "values": []}]},
        'conditions[0]: operator "is" needs 1 value, got 0',
    ),
    (
        {"conditions": [{"property": "balance", "operator": "is between", "values": [1]}]},
        'conditions[0]: operator "is between" needs 2 values, got 1',
    ),
    (
        {"conditions": [{"property": "email", "operator": "is null", "values": ["x"]}]},
        'conditions[0]: operator "is null" takes no values, got 1',
    ),
    (
        {"conditions": [{"property": "email", "operator": "is one of", "values": []}]},
        'conditions[0]: operator "is one of" needs at least one value',
    ),
    (
        {"conditions": [{"property": "balance", "operator": "is", "values": ["ten"]}]},
        "conditions[0]: values[0]: expected a number for integer property 'balance'",
    ),
    (
        {"conditions": [{"property": "created", "operator": "is after", "values": ["01/02/2024"]}]},
        "conditions[0]: values[0]: expected an ISO 8601 date or datetime string",
    ),
    (
        {"conditions": [{"property": "tax_exempt", "operator": "is", "values": ["maybe"]}]},
        'conditions[0]: values[0]: expected one of "exempt", "none", "reverse"',
    ),
    (
        {"conditions": [{"property": "livemode", "operator": "is", "values": [1]}]},
        "conditions[0]: values[0]: expected true or false",
    ),
    (
        {
            "conditions": [
                {"logical": "or", "conditions": [{"property": "email", "operator": "is true"}]}
            ]
        },
        'conditions[0].conditions[0]: operator "is true" does not apply to string property "email"',
    ),
    (
        {
            "conditions": [
                {"logical": "xor", "conditions": [cond("email", "is null")["conditions"][0]]}
            ]
        },
        "conditions[0].logical:",
    ),
    (
        {"conditions": [{"logical": "or", "conditions": []}]},
        "conditions[0]: a nested group needs at least one condition",
    ),
    ({"conditions": "email"}, 'conditions: "conditions" must be a list'),
    ({"conditions": [42]}, "conditions[0]: a condition is an object"),
    (
        {"conditions": [{"property": "email", "operator": "is", "values": ["a"], "x": 1}]},
        "conditions[0]: unknown key 'x' in a condition",
    ),
    (
        {"conditions": [{"property": "email", "operator": "is", "values": "a"}]},
        'conditions[0]: "values" must be a list',
    ),
    (
        {"conditions": [{"property": "metadata", "operator": "contains", "values": ["a"]}]},
        'conditions[0]: operator "contains" does not apply to map of string property "metadata"',
    ),
    (["email"], "a filter is an object"),
    (
        {"conditions": [{"property": "balance", "operator": "is between", "values": [200, 100]}]},
        'conditions[0]: operator "is between" needs the low bound first, got 200 and 100 '
        "(no value is in that range)",
    ),
    (
        {
            "conditions": [
                cond("email", "is null")["conditions"][0],
                {
                    "logical": "or",
                    "conditions": [
                        {
                            "property": "created",
                            "operator": "is not between",
                            "values": ["2024-02-01", "2024-01-31T23:59:59Z"],
                        }
                    ],
                },
            ]
        },
        'conditions[1].conditions[0]: operator "is not between" needs the low bound first, '
        "got 2024-02-01 and 2024-01-31T23:59:59Z (no value is in that range)",
    ),
]


@pytest.mark.parametrize(("data", "message"), ERRORS)
def test_validation_errors_name_the_condition(data: Any, message: str) -> None:
    [problem] = filter_problems(data, SCHEMA)
    assert str(problem).startswith(message)
    with pytest.raises(InvalidInput) as info:
        compile_filter(data, SCHEMA)
    assert info.value.problems == (problem,)
    assert str(info.value) == str(problem)


@pytest.mark.parametrize(
    ("prop", "low", "high"),
    [
        ("balance", 100, 100),
        ("balance", -1, 0),
        ("discount.coupon.percent_off", 12.4, 12.5),
        ("created", "2024-01-01", "2024-01-01"),  # the whole day
        ("created", "2024-01-01T12:00:00Z", "2024-01-01"),  # noon to the day's end
        ("created", "2024-01-01", "2024-01-01T00:00:00Z"),  # the day's first second
    ],
)
def test_bounds_in_order_or_equal_are_a_range(prop: str, low: Any, high: Any) -> None:
    for op in ("is between", "is not between"):
        assert filter_problems(cond(prop, op, low, high), SCHEMA) == []


@pytest.mark.parametrize(
    ("prop", "low", "high"),
    [
        ("balance", 1, 0),
        ("discount.coupon.percent_off", 12.5, 12.4),
        ("created", "2024-01-02", "2024-01-01"),
        ("created", "2024-01-02T00:00:00Z", "2024-01-01"),  # the day ends before it
        ("created", "2024-01-01T00:00:01Z", "2024-01-01T00:00:00Z"),
    ],
)
def test_reversed_bounds_are_refused(prop: str, low: Any, high: Any) -> None:
    """`is between` with its low bound above its high one was saved and matched no
    customer (its negation every customer)."""
    for op in ("is between", "is not between"):
        [problem] = filter_problems(cond(prop, op, low, high), SCHEMA)
        assert problem.location == "conditions[0]"
        assert f'operator "{op}" needs the low bound first' in problem.message


def test_every_error_is_reported_with_its_condition() -> None:
    """Issue 17 §8: validation stopped at the first error."""
    data = {
        "logical": "nand",
        "conditions": [
            {"property": "adress.country", "operator": "is in", "values": ["IT"]},
            {"property": "email", "operator": "is", "values": ["a@b.c"]},
            {
                "logical": "or",
                "conditions": [
                    {"property": "balance", "operator": "is", "values": ["ten", 3, "x"]},
                    {"property": "livemode", "operator": "starts with", "values": ["t"]},
                ],
            },
        ],
    }
    problems = filter_problems(data, SCHEMA)
    assert problems == [
        Problem('"logical" must be "and" or "or", got \'nand\'', "logical"),
        Problem(
            "unknown property 'adress.country'; did you mean 'address.country'?",
            "conditions[0]",
        ),
        Problem("unknown operator 'is in'; did you mean 'is one of'?", "conditions[0]"),
        Problem('operator "is" needs 1 value, got 3', "conditions[2].conditions[0]"),
        Problem(
            "values[0]: expected a number for integer property 'balance', got 'ten'",
            "conditions[2].conditions[0]",
        ),
        Problem(
            "values[2]: expected a number for integer property 'balance', got 'x'",
            "conditions[2].conditions[0]",
        ),
        Problem(
            'operator "starts with" does not apply to boolean property "livemode" '
            '(use one of "is", "is not", "is true", "is false", "is null", "is not null", '
            '"exists", "does not exist")',
            "conditions[2].conditions[1]",
        ),
    ]
    with pytest.raises(InvalidInput) as info:
        compile_filter(data, SCHEMA)
    assert info.value.problems == tuple(problems)
    assert info.value.location == "logical"
    assert str(info.value).splitlines() == [str(p) for p in problems]


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("is in", "is one of"),
        ("in", "is one of"),
        ("not in", "is not one of"),
        ("IS NOT", "is not"),
        ("==", "is"),
        (">=", "is greater than or equal to"),
        ("starts_with", "starts with"),
        ("is betwen", "is between"),
        ("is missing", "does not exist"),
    ],
)
def test_unknown_operators_get_the_operator_they_mean(written: str, meant: str) -> None:
    data = {"conditions": [{"property": "email", "operator": written, "values": ["x"]}]}
    [problem] = filter_problems(data, SCHEMA)
    assert problem.message == f"unknown operator {written!r}; did you mean {meant!r}?"


def test_render() -> None:
    f = {
        "logical": "and",
        "conditions": [
            {"property": "address.country", "operator": "is one of", "values": ["IT", "FR"]},
            {"property": "created", "operator": "is after", "values": ["2024-01-01"]},
            {
                "logical": "or",
                "conditions": [
                    {"property": "balance", "operator": "is between", "values": [0, 10]},
                    {"property": "email", "operator": "is null"},
                    {"property": "metadata.plan name", "operator": "is", "values": ['say "hi"']},
                ],
            },
        ],
    }
    assert render_filter(f, SCHEMA) == (
        'address.country is one of ("IT", "FR") and created is after 2024-01-01 and '
        '(balance is between 0 and 10 or email is null or `metadata.plan name` is "say \\"hi\\"")'
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
TEXT = st.text(alphabet="abAB é@.-", max_size=6)
DAYS = st.dates(min_value=date(1970, 1, 2), max_value=date(2100, 1, 1)).map(str)
SECONDS = st.integers(min_value=0, max_value=4_102_444_800)
# property -> (a value the record may hold, a value a condition may compare with)
VALID: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "email": (TEXT, TEXT),
    "address.country": (TEXT, TEXT),
    "metadata.x": (TEXT, TEXT),
    "balance": (st.integers(-50, 50), st.integers(-50, 50)),
    "created": (SECONDS, DAYS),
    "livemode": (st.booleans(), st.booleans()),
    "preferred_locales": (st.lists(TEXT, max_size=3), TEXT),
}


@st.composite
def valid_conditions(draw: st.DrawFn) -> dict[str, Any]:
    prop = draw(st.sampled_from(sorted(VALID)))
    field = lookup(prop, SCHEMA)
    assert field is not None
    operator = OPERATORS[draw(st.sampled_from(operators_for(field.kind)))]
    value = VALID[prop][1]
    count = {0: st.just(0), 1: st.just(1), 2: st.just(2)}.get(operator.arity, st.integers(1, 3))
    values = [draw(value) for _ in range(draw(count))]
    if operator.arity == 2:  # a range's low bound comes first (ISO days sort as text)
        values.sort()
    return {"property": prop, "operator": operator.name, "values": values}


@st.composite
def customers(draw: st.DrawFn) -> Record:
    record: dict[str, Any] = {}
    for prop, (value, _) in VALID.items():
        if draw(st.booleans()):
            head, _, rest = prop.partition(".")
            held = draw(value | st.none())
            if rest:
                record.setdefault(head, {})[rest] = held
            else:
                record[head] = held
    return record


@given(
    st.sampled_from(["and", "or"]),
    st.lists(valid_conditions(), min_size=1, max_size=4),
    st.lists(customers(), min_size=1, max_size=5),
)
def test_valid_filters_compile_and_combine_their_conditions(
    logical: str, conditions: list[dict[str, Any]], records: list[Record]
) -> None:
    """Every generated filter is valid and has conditions; the group's predicate is the
    and/or of its conditions', and a negative operator is its positive's complement."""
    data = {"logical": logical, "conditions": conditions}
    assert filter_problems(data, SCHEMA) == []
    keep = compile_filter(data, SCHEMA)
    singles = [compile_filter({"conditions": [c]}, SCHEMA) for c in conditions]
    combine = all if logical == "and" else any
    complements = [
        (single, compile_filter({"conditions": [{**c, "operator": positive}]}, SCHEMA))
        for single, c in zip(singles, conditions, strict=True)
        if (positive := OPERATORS[c["operator"]].negates)
    ]
    assert [keep(r) for r in records] == [combine(s(r) for s in singles) for r in records]
    assert [negative(r) for negative, _ in complements for r in records] == [
        not positive(r) for _, positive in complements for r in records
    ]
    assert render_filter(data, SCHEMA).count(" " + logical + " ") >= len(conditions) - 1


@given(
    st.one_of(
        JSON,
        st.fixed_dictionaries(
            {
                "logical": st.sampled_from(["and", "or", "nand"]),
                "conditions": st.lists(valid_conditions() | JSON, max_size=3),
            }
        ),
    ),
    JSON,
)
def test_arbitrary_filters_validate_or_raise_invalid_input(data: Any, record: Any) -> None:
    """Whatever the input, validation either accepts it (and the predicate answers a
    bool on any record) or raises `InvalidInput` listing the same problems."""
    problems = filter_problems(data, SCHEMA)
    if problems:
        with pytest.raises(InvalidInput) as info:
            compile_filter(data, SCHEMA)
        assert list(info.value.problems) == problems
        return
    keep = compile_filter(data, SCHEMA)
    assert keep(record if isinstance(record, dict) else {"email": record}) in (True, False)
    assert isinstance(render_filter(data, SCHEMA), str)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**70, str(2**64)])
def test_an_integer_beyond_64_bits_is_refused_with_its_place(value: Any) -> None:
    """A filter value of 2**70 was accepted, saved, and then broke every answer that
    listed the pipeline (the API's JSON encoder holds 64-bit integers)."""
    data = {
        "conditions": [{"property": "balance", "operator": "is greater than", "values": [value]}]
    }
    [problem] = filter_problems(data, SCHEMA)
    assert str(problem).startswith(
        "conditions[0]: values[0]: expected an integer within the 64-bit"
    )
    edges = [-(2**63), 2**63 - 1]  # low bound first: reversed bounds are refused
    data = {"conditions": [{"property": "balance", "operator": "is between", "values": edges}]}
    assert filter_problems(data, SCHEMA) == []


_HUGE = "ab c" * 250_000


@pytest.mark.parametrize(
    "data",
    [
        {"conditions": [{"property": _HUGE, "operator": "is", "values": ["a"]}]},
        {"conditions": [{"property": "email", "operator": _HUGE, "values": ["a"]}]},
        {"conditions": [{"property": "balance", "operator": "is", "values": [_HUGE]}]},
        {"logical": _HUGE, "conditions": []},
        {"conditions": [{"property": "email", "operator": "is", "values": ["a"], _HUGE: 1}]},
        {"conditions": [{"property": "email", "operator": [[[[[[_HUGE]]]]]], "values": []}]},
    ],
)
def test_a_huge_value_is_shown_briefly_in_its_problem(data: dict[str, Any]) -> None:
    """Each problem quoted the offending value whole: a 1 MB string made a 1 MB
    error message (sent back by the API and shown by the console)."""
    [problem] = filter_problems(data, SCHEMA)
    assert len(problem.message) < 300
    assert "'ab cab c" in problem.message
    assert "…" in problem.message


def _array_of(kind: Kind) -> FieldType:
    return FieldType(Kind.ARRAY, nullable=True, optional=True, items=FieldType(kind))


# Arrays of scalars other than strings (Stripe's customer has none, other sources may).
ARRAYS = FieldType(
    Kind.OBJECT,
    fields={
        "counts": _array_of(Kind.INTEGER),
        "scores": _array_of(Kind.NUMBER),
        "flags": _array_of(Kind.BOOLEAN),
        "days": _array_of(Kind.TIMESTAMP),
    },
)


@pytest.mark.parametrize(
    ("prop", "value", "elements", "expected"),
    [
        ("counts", 1, [True], False),
        ("counts", 0, [False], False),
        ("scores", 1.0, [True], False),
        ("flags", True, [1], False),
        ("flags", False, [0, 0.0], False),
        ("flags", True, [False, True], True),
        ("counts", 1, [0, 1], True),
        ("counts", 1, ["1"], False),
        ("counts", 1, [[1]], False),
        # Numbers compare by value, as `is` and `is one of` compare them: 1 is 1.0.
        ("counts", 1, [1.0], True),
        ("scores", 2.5, [1, 2.5], True),
        ("scores", 2, [2], True),
        # A date stands for its whole UTC day, as with `is`.
        ("days", "2024-01-01", [JAN1 - 1, JAN1 + 3600], True),
        ("days", "2024-01-01", [JAN1 - 1, JAN1 + DAY], False),
    ],
)
def test_contains_on_an_array_matches_an_element_as_is_would(
    prop: str, value: Any, elements: list[Any], expected: bool
) -> None:
    """`contains` compared array elements with Python's ``==``: `contains 1` matched
    ``true`` and `contains false` matched ``0``; a date never matched a timestamp."""
    record = {prop: elements}
    contains = compile_filter(cond(prop, "contains", value), ARRAYS)
    lacks = compile_filter(cond(prop, "does not contain", value), ARRAYS)
    assert contains(record) is expected
    assert lacks(record) is not expected
    for element in elements:  # an element alone matches as `is` matches it
        assert contains({prop: [element]}) is _is(prop, value, element)


def _is(prop: str, value: Any, element: Any) -> bool:
    items = ARRAYS.fields[prop].items
    assert items is not None
    one = FieldType(Kind.OBJECT, fields={"x": items})
    return compile_filter(cond("x", "is", value), one)({"x": element})


@pytest.mark.parametrize("text", ["1_000", "\u0661\u0662", "\uff11\uff12", "0x10", "1 000"])
def test_a_number_given_as_text_takes_ascii_digits_only(text: str) -> None:
    """Filter values follow the Customer Model's rule for text numbers (README): Python's
    int() and float() took '1_000' as 1000 and other scripts' digits ('١٢') as 12."""
    data = {"conditions": [{"property": "balance", "operator": "is", "values": [text]}]}
    [problem] = filter_problems(data, SCHEMA)
    assert problem.message.startswith("values[0]: expected a number")


def test_a_number_given_as_text_may_have_sign_spaces_point_and_exponent() -> None:
    values = [" 12 ", "-3", "+4", "1.5e3", ".5"]
    data = {"conditions": [{"property": "balance", "operator": "is one of", "values": values}]}
    assert filter_problems(data, SCHEMA) == []
