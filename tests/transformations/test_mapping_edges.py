"""Mapping expressions on edge-case input: escapes outside the BMP, huge numbers."""

from __future__ import annotations

from typing import Any

import pytest

from headwater.adapters.connectors.stripe.schema import STRIPE_CUSTOMER_SCHEMA as SCHEMA
from headwater.adapters.transformations.mapping import (
    ExpressionError,
    compile_expr,
    compile_mapping,
    mapping_problems,
    parse_expression,
)
from headwater.kernel.model import DEFAULT_MODEL, CustomerModel
from headwater.kernel.records import TransformFailure


def ev(text: str, record: dict[str, Any]) -> Any:
    return compile_expr(parse_expression(text), SCHEMA).fn(record)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"\\ud83d\\ude00"', "\U0001f600"),
        ('"a\\uD83D\\uDE00b"', "a\U0001f600b"),
        ("concat('\\ud83d\\ude00', email)", "\U0001f600x@y"),
        ('"\\u00e9"', "é"),
    ],
)
def test_a_surrogate_pair_escape_is_one_character(text: str, expected: str) -> None:
    """``\\ud83d\\ude00`` is how JSON (and JavaScript) write 😀: it used to make two
    lone surrogates, text a UTF-8 warehouse cannot store."""
    assert ev(text, {"email": "x@y"}) == expected


@pytest.mark.parametrize(
    ("text", "column"),
    [('"\\ud83d"', 2), ('"ab\\ude00"', 4), ('"\\ude00\\ud83d"', 2), ('"x\ud800"', 3)],
)
def test_half_a_character_is_refused_where_it_is(text: str, column: int) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert caught.value.column == column
    assert "half of a character" in caught.value.detail


BIG = "99999999999999999999"  # past 64 bits


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f'split_part(email, "@", {BIG})', ""),
        (f'split_rest(email, "@", {BIG})', ""),
        (f'split_part(email, "@", -{BIG})', ""),
        (f'split_part("a@b", "@", {BIG})', ""),
        (f'split_rest("a@b", "@", {BIG})', ""),
        ('split_part(email, "@", 2)', "y"),
    ],
)
def test_a_field_number_past_64_bits_is_past_the_last_field(text: str, expected: str) -> None:
    """PostgreSQL's rule: a field past the last one is ''.  A huge constant field
    number raised OverflowError: a failed record, or a traceback when the pipeline
    was saved (constant text is folded then)."""
    assert ev(text, {"email": "x@y"}) == expected


def test_a_huge_field_number_is_no_traceback_when_saved() -> None:
    model: CustomerModel = DEFAULT_MODEL
    mapping = {"email": f'split_part("a@b", "@", {BIG})'}
    assert mapping_problems(mapping, model, SCHEMA) == []
    assert compile_mapping(mapping, model, SCHEMA).transform([{}]) == [{"email": ""}]


def test_a_value_in_an_error_shows_what_does_not_print_as_escapes() -> None:
    """A customer's text in an error is shown as it is, but a right-to-left override
    reordered the message around it and a zero-width space looked like nothing: such
    characters are escapes, as in the Customer Model's errors."""
    t = compile_mapping({"metadata": "json_parse(metadata.x)"}, DEFAULT_MODEL, SCHEMA)
    [out] = t.transform([{"metadata": {"x": "Zoë\u202e\u200b{"}}])
    assert isinstance(out, TransformFailure)
    assert '"Zoë\\u202e\\u200b{"' in out.message
    assert out.message.isprintable()
