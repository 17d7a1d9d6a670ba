"""Mapping expressions: every function, null rules, type errors, transformation, suggestion."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.adapters.connectors.stripe.schema import STRIPE_CUSTOMER_SCHEMA as SCHEMA
from headwater.adapters.transformations.mapping import (
    FUNCTIONS,
    ExpressionError,
    compile_expr,
    compile_mapping,
    mapping_problems,
    parse_expression,
    suggest_mapping,
)
from headwater.adapters.transformations.mapping import runtime as rt
from headwater.kernel.errors import InvalidInput
from headwater.kernel.model import DEFAULT_MODEL, CustomerModel, Property, PropertyType
from headwater.kernel.records import TransformFailure

REC: dict[str, Any] = {
    "id": "cus_1",
    "email": "  Ada@Example.COM ",
    "name": "ada king lovelace",
    "balance": 150,
    "created": 1700000000,
    "phone": None,
    "livemode": False,
    "address": {"city": "Rome", "country": "it"},
    "metadata": {"plan": "pro", "plan name": "Gold", "a.b": "dotted", "json": '{"x": [1, 2]}'},
    "preferred_locales": ["it", "en"],
    "discount": {"coupon": {"percent_off": 12.5}},
}


def ev(text: str, record: dict[str, Any] | None = None) -> Any:
    return compile_expr(parse_expression(text), SCHEMA).fn(REC if record is None else record)


CASES: list[tuple[str, Any]] = [
    ('"x"', "x"),
    ("'it''s'".replace("''", "\\'"), "it's"),
    ("42", 42),
    ("-1.5", -1.5),
    ("true", True),
    ("null", None),
    ("email", "  Ada@Example.COM "),
    ("address.city", "Rome"),
    ("metadata.plan", "pro"),
    ('metadata["plan name"]', "Gold"),
    ("metadata.a.b", "dotted"),
    ("shipping.address.city", None),
    ("coalesce(phone, email)", "  Ada@Example.COM "),
    ("coalesce(phone, null)", None),
    ('if(balance > 100, "big", "small")', "big"),
    ('if(phone == "1", "a", "b")', "b"),  # null condition takes the else branch
    ('concat(address.city, ", ", address.country)', "Rome, it"),
    ('concat("n=", balance, " ", livemode)', "n=150 false"),
    ('concat("a", phone)', None),
    ("lower(email)", "  ada@example.com "),
    ("upper(address.country)", "IT"),
    ("trim(email)", "Ada@Example.COM"),
    ("initcap(name)", "Ada King Lovelace"),
    ('initcap("o\'neil-SMITH x2y")', "O'Neil-Smith X2y"),
    ('substring("Lovelace", 2, 3)', "ove"),
    ('substring("Lovelace", 5)', "lace"),
    ('substring("abc", 0, 2)', "a"),
    ('replace(name, " ", "_")', "ada_king_lovelace"),
    ('split_part(name, " ", 1)', "ada"),
    ('split_part(name, " ", 3)', "lovelace"),
    ('split_part(name, " ", 4)', ""),
    ('split_part(name, " ", -1)', "lovelace"),
    ('split_rest(name, " ", 2)', "king lovelace"),
    ('split_rest(name, " ", 9)', ""),
    ("len(name)", 17),
    ("len(preferred_locales)", 2),
    ("len(metadata)", 4),
    ("balance == 150", True),
    ("balance != 150", False),
    ("balance < 151", True),
    ("balance <= 150", True),
    ("balance > 150", False),
    ("balance >= 150.0", True),
    ('email = "x"', False),
    ("phone == null", None),
    ("livemode and balance > 1", False),
    ("not livemode or phone == null", True),
    ('phone == "1" and false', False),
    ('phone == "1" or true', True),
    ('phone == "1" or false', None),
    ("not (balance > 1)", False),
    ("is_null(phone)", True),
    ("is_null(email)", False),
    ("from_unix(created)", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ("from_unix(discount.end)", None),
    ("to_date(created)", date(2023, 11, 14)),
    ('to_date("2024-02-29")', date(2024, 2, 29)),
    ('to_date("2024-02-29T23:30:00-02:00")', date(2024, 3, 1)),
    ("to_date(from_unix(0))", date(1970, 1, 1)),
    ('from_unix(created) > to_date("2023-01-01")', True),
    ("json_parse(metadata.json)", {"x": [1, 2]}),
    ("json_parse(phone)", None),
    ("to_string(balance)", "150"),
    ('nullif(split_part("ada", " ", 2), "")', None),
    ("discount.coupon.percent_off", 12.5),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_expression_values(text: str, expected: Any) -> None:
    assert ev(text) == expected


def test_every_function_is_exercised() -> None:
    used = {
        name for name in FUNCTIONS if any(f"{name}(" in t or f" {name} " in t for t, _ in CASES)
    }
    assert used | {"==", "!=", "<", "<=", ">", ">=", "not"} >= set(FUNCTIONS)


STRICT = [
    "lower(phone)",
    "upper(phone)",
    "trim(phone)",
    "initcap(phone)",
    "len(phone)",
    "from_unix(discount.end)",
    "to_date(phone)",
    "json_parse(phone)",
    "to_string(phone)",
    'concat(phone, "x")',
    "substring(phone, 1, 2)",
    'substring("abc", discount.coupon.amount_off)',
    'replace("abc", phone, "x")',
    'split_part("a b", " ", discount.coupon.amount_off)',
    'split_rest(phone, " ", 1)',
    'not (phone == "1")',
    "balance < discount.coupon.amount_off",
]


@pytest.mark.parametrize("text", STRICT)
def test_null_argument_gives_null(text: str) -> None:
    assert ev(text) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("lower(metadata)", "lower() expects string as argument 1, got object"),
        ("lower(cash_balance)", None),  # any: checked at run time
    ],
)
def test_static_arguments(text: str, fragment: str | None) -> None:
    if fragment is None:
        assert ev(text) is None
        with pytest.raises(ValueError, match="expects a string"):
            ev(text, {"cash_balance": {"a": 1}})
        return
    with pytest.raises(ExpressionError) as info:
        ev(text)
    assert fragment in str(info.value)


ERRORS = [
    ("lower(", 1, 7, "unexpected end of the expression; expected"),
    ("a b", 1, 3, "unexpected 'b'"),
    ('"abc', 1, 1, "unterminated string"),
    ("concat(email,\n  )", 2, 3, "unexpected ')'"),
    ('"\\q"', 1, 2, "unknown escape"),
    ("1e999", 1, 1, "out of range"),
    ("1" * 5000, 1, 1, "(5000 digits) is out of range"),  # a VisitError (500) before
    ("lowr(email)", 1, 1, "unknown function 'lowr'; did you mean 'lower'?"),
    ("emial", 1, 1, "unknown Stripe customer field 'emial'; did you mean 'email'?"),
    ("email.x", 1, 1, "'email' is a string; it has no field 'x'"),
    ("upper(balance)", 1, 7, "upper() expects string as argument 1, got integer"),
    ("substring(email)", 1, 1, "substring() takes 2 to 3 arguments, got 1"),
    ("coalesce()", 1, 1, "coalesce() takes at least 1 argument"),
    ('if(email, "a", "b")', 1, 4, "if() expects boolean as argument 1, got string"),
    ('balance == "150"', 1, 9, "cannot compare integer with string"),
    ("livemode < true", 1, 10, "cannot compare boolean with boolean"),
    ('split_part("a b", " ", 0)', 1, 1, "field position must not be zero"),
    ("email and livemode", 1, 1, 'operator "and" expects boolean as argument 1'),
    ("   ", 1, 1, "the expression is empty"),
    # Nested past MAX_DEPTH (600 levels exhausted Python's stack: a 500 over the API).
    ("not " * 600 + "true", 1, 257, "nests more than 64 levels deep"),
    ("lower(" * 600 + "email" + ")" * 600, 1, 385, "nests more than 64 levels deep"),
    # Constants folded when the mapping is saved: each of these raised something else
    # than a located error (a 500), and nested replace() grew past the server's memory.
    ('to_date("9999-12-31T23:59:59-05:00")', 1, 1, "out of range"),
    ('json_parse("' + "9" * 5000 + '")', 1, 1, "json_parse() got invalid JSON"),
    ('json_parse("' + "[" * 5000 + '")', 1, 1, "json_parse() got invalid JSON"),
    ("""json_parse("[1, NaN]")""", 1, 1, "NaN is not a JSON number"),
    ("""json_parse("[1e400]")""", 1, 1, "1e400 is past the largest number"),  # not null
    ("""json_parse("{\\"a\\": -Infinity}")""", 1, 1, "-Infinity is not a JSON number"),
    ("""json_parse("[\\"\\\\ud800\\"]")""", 1, 1, "\\ud800 is a lone surrogate"),
    (
        "replace(" * 10 + '"aa"' + ', "a", "aaaaaaaaaa")' * 10,
        1,
        33,  # the first one past the limit (2 * 10^6 characters)
        "replace() would make a text of",
    ),
]


@pytest.mark.parametrize(("text", "line", "column", "fragment"), ERRORS)
def test_positioned_errors(text: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expr(parse_expression(text), SCHEMA)
    assert (info.value.line, info.value.column) == (line, column)
    assert fragment in str(info.value)


def test_runtime_errors_become_failures_naming_property_and_value() -> None:
    model = CustomerModel(
        (
            Property("email", PropertyType.STRING),
            Property("n", PropertyType.INTEGER),
            Property("extra", PropertyType.JSON),
        )
    )
    t = compile_mapping(
        {
            "email": "lower(email)",
            "n": 'split_part(email, " ", balance)',
            "extra": "json_parse(metadata.x)",
        },
        model,
        SCHEMA,
    )
    ok, zero, bad_json, not_text = t.transform(
        [
            {"email": "A B", "balance": 2, "metadata": {"x": "[1]"}},
            {"email": "a", "balance": 0},
            {"email": "a", "balance": 1, "metadata": {"x": "{"}},
            {"email": 7, "balance": 1},
        ]
    )
    assert ok == {"email": "a b", "n": "B", "extra": [1]}
    assert isinstance(zero, TransformFailure)
    assert "'n'" in zero.message
    assert "zero" in zero.message
    assert isinstance(bad_json, TransformFailure)
    assert "'extra'" in bad_json.message
    assert '"{"' in bad_json.message
    assert isinstance(not_text, TransformFailure)
    assert "'email'" in not_text.message
    assert "got 7" in not_text.message
    assert t.logs() == []
    t.close()


def test_default_model_mapping_end_to_end() -> None:
    mapping = {
        "email": "lower(trim(email))",
        "first_name": 'initcap(split_part(name, " ", 1))',
        "address.city": "address.city",
        "address.country": "upper(address.country)",
        "created_at": "created",
        "metadata": "metadata",
    }
    assert mapping_problems(mapping, DEFAULT_MODEL, SCHEMA) == []
    (out,) = compile_mapping(mapping, DEFAULT_MODEL, SCHEMA).transform([REC])
    assert isinstance(out, dict)
    cols = DEFAULT_MODEL.to_columns(out)
    assert cols["email"] == "ada@example.com"
    assert cols["first_name"] == "Ada"
    assert cols["address_country"] == "IT"
    assert cols["created_at"] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert cols["metadata"]["plan"] == "pro"


MAPPING_ERRORS = [
    ([], None, "a mapping is an object"),
    ({}, None, "at least one property"),
    ({"nope": "email"}, "nope", "unknown Customer Model property"),
    ({"email": 3}, "email", "the expression must be a string"),
    ({"email": "lower(emial)"}, "email", "line 1, column 7: unknown Stripe customer field 'emial'"),
    (
        {"created_at": "address"},
        "created_at",
        "line 1, column 1: expected a value convertible to datetime, got an object",
    ),
    ({"created_at": "livemode"}, "created_at", "convertible to datetime, got a boolean"),
    ({"email": "preferred_locales"}, "email", "convertible to string, got an array"),
    ({"address": "email"}, "address", "convertible to object, got a string"),
    (
        {"address": "address", "address.city": "address.city"},
        "address",
        "overlaps with 'address.city'",
    ),
    (
        {"first_name": "\n  upper(\n  balance)"},
        "first_name",
        "line 3, column 3: upper() expects string",
    ),
]


@pytest.mark.parametrize(("mapping", "location", "fragment"), MAPPING_ERRORS)
def test_mapping_validation(mapping: Any, location: str | None, fragment: str) -> None:
    [problem] = mapping_problems(mapping, DEFAULT_MODEL, SCHEMA)
    assert problem.location == location
    assert fragment in str(problem)
    with pytest.raises(InvalidInput) as info:
        compile_mapping(mapping, DEFAULT_MODEL, SCHEMA)
    assert info.value.location == location
    assert info.value.problems == (problem,)
    assert fragment in str(info.value)


def test_every_mapping_error_is_reported_with_its_line_and_column() -> None:
    """Issue 17 §8: validation stopped at the first error."""
    mapping = {
        "email": "lower(emial)",
        "nope": "email",
        "first_name": "\n  upper(\n  balance)",
        "created_at": "livemode",
        "address.city": "address.city",
    }
    problems = mapping_problems(mapping, DEFAULT_MODEL, SCHEMA)
    assert [(p.location, p.line, p.column) for p in problems] == [
        ("email", 1, 7),
        ("nope", None, None),
        ("first_name", 3, 3),
        ("created_at", 1, 1),
    ]
    assert problems[0].message == "unknown Stripe customer field 'emial'; did you mean 'email'?"
    assert str(problems[0]) == f"email: line 1, column 7: {problems[0].message}"
    with pytest.raises(InvalidInput) as info:
        compile_mapping(mapping, DEFAULT_MODEL, SCHEMA)
    assert info.value.problems == tuple(problems)
    assert info.value.location == "email"
    assert str(info.value).splitlines() == [str(p) for p in problems]


def test_valid_bare_paths_and_objects() -> None:
    flat = {"email": "email", "address.city": "address.city", "created_at": "created"}
    assert mapping_problems(flat, DEFAULT_MODEL, SCHEMA) == []
    objects = {"address": "shipping.address", "metadata": "metadata"}
    assert mapping_problems(objects, DEFAULT_MODEL, SCHEMA) == []
    (out,) = compile_mapping({"address": "address"}, DEFAULT_MODEL, SCHEMA).transform([REC])
    assert isinstance(out, dict)
    assert DEFAULT_MODEL.to_columns(out)["address_city"] == "Rome"


def test_suggestion_is_valid_and_sensible() -> None:
    suggestion = suggest_mapping(DEFAULT_MODEL, SCHEMA)
    assert mapping_problems(suggestion, DEFAULT_MODEL, SCHEMA) == []
    assert suggestion["email"] == "email"
    assert suggestion["created_at"] == "created"
    assert suggestion["metadata"] == "metadata"
    assert {
        f"address.{k}" for k in ("line1", "line2", "city", "postal_code", "state", "country")
    } <= set(suggestion)
    (out,) = compile_mapping(suggestion, DEFAULT_MODEL, SCHEMA).transform(
        [{**REC, "name": "Ada  King Lovelace"}, {"id": "c", "name": "Cher"}]
    )[:1]
    assert isinstance(out, dict)
    assert (out["first_name"], out["last_name"]) == ("Ada", "King Lovelace")
    single = compile_mapping(suggestion, DEFAULT_MODEL, SCHEMA).transform([{"name": "Cher"}])[0]
    assert isinstance(single, dict)
    assert (single["first_name"], single["last_name"]) == ("Cher", None)


def test_suggestion_for_another_model() -> None:
    model = CustomerModel(
        (
            Property("full_name", PropertyType.STRING),
            Property("country", PropertyType.STRING),
            Property("balance", PropertyType.INTEGER),
            Property("stripe_id", PropertyType.STRING),
            Property("locales", PropertyType.ARRAY),
            Property("unrelated", PropertyType.BOOLEAN),
            Property("email", PropertyType.ARRAY),  # incompatible: not suggested
        )
    )
    assert suggest_mapping(model, SCHEMA) == {
        "full_name": "name",
        "country": "address.country",
        "balance": "balance",
        "stripe_id": "id",
        "locales": "preferred_locales",
    }


def _error_of(text: str) -> ExpressionError | None:
    try:
        compile_expr(parse_expression(text), SCHEMA)
    except ExpressionError as exc:
        return exc
    return None


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_parser_never_crashes(text: str) -> None:
    error = _error_of(text)
    if error is not None:
        assert error.line >= 1
        assert error.column >= 1
        assert str(error).startswith(f"line {error.line}, column {error.column}: ")


ALPHABET = st.sampled_from(
    [*list("abelmnoprstu_.\"'()[],=<>! 019-\n"), "email", "lower(", "and", "null", "metadata"]
)


@settings(max_examples=300)
@given(st.lists(ALPHABET, max_size=15).map("".join))
def test_parser_on_near_miss_input(text: str) -> None:
    error = _error_of(text)
    if error is not None:
        assert error.line >= 1
        assert error.column >= 1


@settings(max_examples=300, deadline=None)
@given(
    name=st.one_of(st.none(), st.text(alphabet=" ab-", max_size=12)),
    sep=st.sampled_from([" ", "-", "ab", "  "]),
    pos=st.integers(min_value=-4, max_value=5).filter(lambda n: n != 0),
)
def test_split_fields_with_constant_arguments_agree_with_the_runtime(
    name: str | None, sep: str, pos: int
) -> None:
    """`split_part`/`split_rest` specialise constant delimiters and positions; the
    specialised closures must give what the general runtime functions give."""
    record = {"name": name}
    for function, generic in (("split_part", rt.split_part), ("split_rest", rt.split_rest)):
        expected = None if name is None else generic(name, sep, pos)
        assert ev(f'{function}(name, "{sep}", {pos})', record) == expected
        assert ev(f'nullif({function}(name, "{sep}", {pos}), "")', record) == (expected or None)
