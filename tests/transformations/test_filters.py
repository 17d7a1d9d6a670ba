"""Filters: every operator on every type it applies to, null semantics, errors, rendering."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.adapters.transformations.filters import (
    compile_filter,
    render_filter,
    validate_filter,
)
from headwater.adapters.transformations.filters.operators import OPERATORS
from headwater.kernel.errors import InvalidInput

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
    return compile_filter(cond(prop, op, *values))(CUSTOMER if record is None else record)


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
    keep = compile_filter(f)
    assert keep(CUSTOMER)
    assert not keep({**CUSTOMER, "metadata": {}})
    assert keep({"balance": -1})


@pytest.mark.parametrize("empty", [None, {}, {"logical": "and", "conditions": []}])
def test_no_filter_keeps_everyone(empty: Any) -> None:
    assert compile_filter(empty)({}) is True
    assert render_filter(empty) == ""


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
    ({"conditions": [{"logical": "xor", "conditions": []}]}, "conditions[0].logical:"),
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
]


@pytest.mark.parametrize(("data", "message"), ERRORS)
def test_validation_errors_name_the_condition(data: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_filter(data)
    assert message in str(info.value)
    with pytest.raises(InvalidInput):
        compile_filter(data)


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
    assert render_filter(f) == (
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
PROPS = st.sampled_from(
    [
        "email",
        "balance",
        "created",
        "address.country",
        "metadata.x",
        "livemode",
        "preferred_locales",
        "nope",
    ]
)
CONDITIONS = st.fixed_dictionaries(
    {
        "property": PROPS,
        "operator": st.sampled_from([*OPERATORS, "bogus"]),
        "values": st.lists(JSON, max_size=3),
    }
)


@given(
    st.one_of(
        JSON,
        st.fixed_dictionaries(
            {
                "logical": st.sampled_from(["and", "or", "nand"]),
                "conditions": st.lists(CONDITIONS | JSON, max_size=3),
            }
        ),
    ),
    JSON,
)
def test_arbitrary_filters_validate_or_raise_invalid_input(data: Any, record: Any) -> None:
    try:
        keep = compile_filter(data)
    except InvalidInput as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        return
    result = keep(record if isinstance(record, dict) else {"email": record})
    assert isinstance(result, bool)
    assert isinstance(render_filter(data), str)
