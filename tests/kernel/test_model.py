from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from headwater.kernel.errors import InvalidInput, NotFound
from headwater.kernel.model import (
    DEFAULT_MODEL,
    ConversionError,
    CustomerModel,
    Property,
    PropertyType,
    convert,
)
from headwater.kernel.model_edits import add_property, drop_property, rename_property

T = PropertyType


@pytest.mark.parametrize(
    ("value", "ptype", "expected"),
    [
        ("a", T.STRING, "a"),
        (12, T.STRING, "12"),
        (True, T.STRING, "true"),
        (3, T.INTEGER, 3),
        (3.0, T.INTEGER, 3),
        (" 42 ", T.INTEGER, 42),
        (1.5, T.FLOAT, 1.5),
        ("2.5", T.FLOAT, 2.5),
        ("10.25", T.DECIMAL, Decimal("10.25")),
        (0.1, T.DECIMAL, Decimal("0.1")),
        ("yes", T.BOOLEAN, True),
        (0, T.BOOLEAN, False),
        (0, T.DATETIME, datetime(1970, 1, 1, tzinfo=UTC)),
        ("2024-05-01T10:00:00Z", T.DATETIME, datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01", T.DATE, date(2024, 5, 1)),
        (1714557600, T.DATE, date(2024, 5, 1)),
        ({"a": [1, 2]}, T.JSON, {"a": [1, 2]}),
        (["en", "fr", None], T.ARRAY, ["en", "fr"]),
        (None, T.INTEGER, None),
    ],
)
def test_convert_accepts(value: object, ptype: PropertyType, expected: object) -> None:
    assert convert(value, ptype) == expected


@pytest.mark.parametrize(
    ("value", "ptype"),
    [
        ({"a": 1}, T.STRING),
        (1.5, T.INTEGER),
        (True, T.INTEGER),
        ("abc", T.INTEGER),
        (float("nan"), T.FLOAT),
        ("maybe", T.BOOLEAN),
        ("not a date", T.DATETIME),
        ("2024-13-01", T.DATE),
        (float("inf"), T.JSON),
        ("en", T.ARRAY),
        # Each of these raised past the record (OSError, MemoryError): the run failed.
        (1.7e18, T.DATETIME),  # nanoseconds taken for seconds
        (1_700_000_000_000_000_000, T.DATE),
        ("1e99999999999999", T.DECIMAL),
        (Decimal("1e39"), T.DECIMAL),  # past DECIMAL(38, 9)
    ],
)
def test_convert_rejects_with_property_and_value(value: object, ptype: PropertyType) -> None:
    with pytest.raises(ConversionError) as info:
        convert(value, ptype, "plan")
    assert "'plan'" in str(info.value)
    assert ptype.value in str(info.value)


def test_to_columns_refuses_a_float_that_is_not_finite() -> None:
    """A float is stored as it comes, unconverted: NaN went through to the warehouse."""
    model = CustomerModel((Property("score", T.FLOAT),))
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ConversionError):
            model.to_columns({"score": bad})
    assert model.to_columns({"score": 1.5}) == {"score": 1.5}


def test_a_vanishingly_small_decimal_is_zero_at_the_warehouse_scale() -> None:
    assert convert("1e-99999999999999", T.DECIMAL, "x") == 0


def test_to_columns_flattens_nested_and_dotted_paths() -> None:
    row = DEFAULT_MODEL.to_columns(
        {"email": "a@b.c", "address": {"city": "Rome"}, "address.country": "IT", "created_at": 0}
    )
    assert row == {
        "email": "a@b.c",
        "address_city": "Rome",
        "address_country": "IT",
        "created_at": datetime(1970, 1, 1, tzinfo=UTC),
    }


def test_to_columns_rejects_unknown_keys_and_non_objects() -> None:
    with pytest.raises(ConversionError, match="unknown Customer Model property 'plan'"):
        DEFAULT_MODEL.to_columns({"plan": "gold"})
    with pytest.raises(ConversionError, match="'address' is an object"):
        DEFAULT_MODEL.to_columns({"address": "Via Roma 1"})


def test_model_round_trips_and_rejects_bad_names() -> None:
    assert CustomerModel.from_list(DEFAULT_MODEL.as_list()) == DEFAULT_MODEL
    with pytest.raises(InvalidInput, match="reserved"):
        CustomerModel.from_list([{"name": "_id", "type": "string"}])
    with pytest.raises(InvalidInput, match=r"\[0\]: unknown type 'text'"):
        CustomerModel.from_list([{"name": "x", "type": "text"}])
    with pytest.raises(InvalidInput, match="must match"):
        CustomerModel.from_list([{"name": "Email", "type": "string"}])


def test_two_paths_flattening_to_one_column_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="both flatten to column 'address_city'"):
        CustomerModel.from_list(
            [
                {"name": "address_city", "type": "string"},
                {
                    "name": "address",
                    "type": "object",
                    "properties": [{"name": "city", "type": "string"}],
                },
            ]
        )


def test_edits_report_column_changes() -> None:
    model, changes = add_property(DEFAULT_MODEL, "address.region", T.STRING)
    assert [c.name for c in changes.added] == ["address_region"]
    model, changes = rename_property(model, "address", "postal")
    assert ("address_city", "postal_city") in changes.renamed
    assert model.column("postal.region") is not None
    model, changes = drop_property(model, "postal")
    assert "postal_region" in changes.dropped
    assert model.find("postal") is None
    with pytest.raises(NotFound):
        drop_property(model, "nope")
    with pytest.raises(InvalidInput, match="already exists"):
        add_property(model, "email", T.STRING)


@pytest.mark.parametrize(
    ("text", "ptype", "expected"),
    [
        (" 12 ", T.INTEGER, 12),
        ("+5", T.INTEGER, 5),
        ("-0", T.INTEGER, 0),
        ("\t-7\n", T.INTEGER, -7),
        (" 1e3", T.FLOAT, 1000.0),
        ("-.5", T.FLOAT, -0.5),
        ("2.", T.FLOAT, 2.0),
        ("+1.25E-2", T.DECIMAL, Decimal("0.0125")),
        (".5", T.DECIMAL, Decimal("0.5")),
    ],
)
def test_text_numbers_in_ascii_digits_convert(
    text: str, ptype: PropertyType, expected: object
) -> None:
    assert convert(text, ptype, "n") == expected


@pytest.mark.parametrize("ptype", [T.INTEGER, T.FLOAT, T.DECIMAL])
@pytest.mark.parametrize(
    "text",
    [
        "1_000",  # Python's int(), float() and Decimal() take underscores
        "\u0661\u0662",  # Arabic-Indic digits: int() reads them as 12
        "\uff11\uff12",  # fullwidth digits
        "\u0661.\u0665",
        "0x10",
        "",
        "  ",
        "1 000",
        "--1",
    ],
)
def test_text_numbers_take_ascii_digits_only(text: str, ptype: PropertyType) -> None:
    """A text is a number when it is written in ASCII digits (README, The mapping
    language): "1_000" and other scripts' digits were imported as 1000 and 12, where
    PostgreSQL's and DuckDB's own casts refuse them."""
    with pytest.raises(ConversionError) as info:
        convert(text, ptype, "metadata_count")
    assert "'metadata_count'" in str(info.value)


def test_text_integers_take_no_exponent_or_point() -> None:
    for text in ("1e3", "12.0", "12."):
        with pytest.raises(ConversionError, match="'n' \\(integer\\)"):
            convert(text, T.INTEGER, "n")


@pytest.mark.parametrize(
    "value",
    [2**63, -(2**63) - 1, 2**64 - 1, str(2**63), "-9223372036854775809", 1e19, Decimal("1e30")],
)
def test_an_integer_past_64_bits_is_the_property_s_error(value: object) -> None:
    """The warehouse's integer columns are 64-bit (BIGINT); a larger integer (a Stripe
    metadata string, a transform's 2**64 - 1) passed the model and was refused only by
    the write, naming a column rather than the property, or by the engine."""
    model = CustomerModel((Property("stats", T.OBJECT, "", (Property("score", T.INTEGER),)),))
    with pytest.raises(ConversionError) as info:
        model.to_columns({"stats.score": value})
    assert "property 'stats.score' (integer)" in str(info.value)
    assert "64-bit" in str(info.value)
    edges = {"stats.score": 2**63 - 1}, {"stats": {"score": str(-(2**63))}}
    assert [model.to_columns(e) for e in edges] == [
        {"stats_score": 2**63 - 1},
        {"stats_score": -(2**63)},
    ]


@pytest.mark.parametrize(
    ("value", "ptype"),
    [
        (253402300800, T.DATETIME),  # 10000-01-01T00:00:00Z in unix seconds
        ("9999-12-31T23:00:00-05:00", T.DATETIME),  # 10000-01-01 in UTC
        ("0001-01-01T00:30:00+01:00", T.DATETIME),
        (-62135596801, T.DATE),
        (1.7e18, T.DATETIME),  # nanoseconds taken for seconds
    ],
)
def test_a_moment_out_of_the_calendar_says_so(value: object, ptype: PropertyType) -> None:
    """Stripe's unix seconds and ISO texts past the years 1-9999 (in UTC) failed with
    'cannot convert 253402300800' and no reason."""
    with pytest.raises(ConversionError) as info:
        convert(value, ptype, "renews_at")
    assert str(info.value).startswith(f"property 'renews_at' ({ptype.value}): cannot convert")
    assert str(info.value).endswith("(out of range: years 1 to 9999, in UTC)")


def test_a_value_in_an_error_is_shown_in_its_own_script() -> None:
    """The value an error shows was JSON with every non-ASCII character escaped: a
    customer's 'Zoë' or '١٢' read 'Zo\\u00eb' and '\\u0661\\u0662' in the run's errors.
    What text cannot hold (a lone surrogate, NUL, control characters) stays escaped."""
    with pytest.raises(ConversionError) as info:
        convert("Zoë ١٢ 😀", T.INTEGER, "count")
    assert '"Zoë ١٢ 😀"' in str(info.value)
    with pytest.raises(ConversionError) as info:
        convert("a\ud800\x00b", T.INTEGER, "count")
    assert '"a\\ud800\\u0000b"' in str(info.value)
    assert str(info.value).encode("utf-8")


def test_invisible_characters_in_an_error_s_value_stay_escaped() -> None:
    """Shown in its own script, a value could hide what it holds: a right-to-left
    override reorders the message around it, a zero-width or no-break space looks
    like nothing or a space.  Characters that do not print are shown as escapes."""
    with pytest.raises(ConversionError) as info:
        convert("12\u202e34\u200b\u00a0\U000e0001é", T.INTEGER, "count")
    assert '"12\\u202e34\\u200b\\u00a0\\udb40\\udc01é"' in str(info.value)
    assert str(info.value).isprintable()


@pytest.mark.parametrize(
    ("number", "text"),
    [(100.0, "100"), (-0.0, "0"), (0.5, "0.5"), (1e15, "1000000000000000"), (1e16, "1e+16")],
)
def test_a_float_becomes_text_as_to_string_writes_it(number: float, text: str) -> None:
    """A whole float given to a string property was written '100.0' (Python's repr),
    where the mapping's to_string() and a JavaScript transform (whose JSON has no 100.0)
    give '100': one value, two texts, by the path it took."""
    from headwater.adapters.transformations.mapping import runtime

    assert convert(number, T.STRING, "code") == text == runtime.to_text(number)


@pytest.mark.parametrize(
    "values",
    [
        {"address": {"city": "Rome"}, "address.city": "Milan"},
        {"address.city": "Milan", "address": {"city": "Rome"}},
        {"address": None, "address.city": "Milan"},
        {"address.city": "Milan", "address": None},
    ],
)
def test_a_property_given_twice_in_one_result_is_the_record_s_error(
    values: dict[str, object],
) -> None:
    """A result giving a leaf on its own and in its object ({'address': {'city': ...},
    'address.city': ...}) kept whichever came last, without a word."""
    with pytest.raises(ConversionError, match=r"property 'address\.city' is given twice"):
        DEFAULT_MODEL.to_columns(values)
    both = {"address": {"city": "Rome"}, "address.country": "IT"}  # other leaves: fine
    assert DEFAULT_MODEL.to_columns(both) == {"address_city": "Rome", "address_country": "IT"}
