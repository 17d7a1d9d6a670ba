"""`kernel.json_text`: JSON as users send it, refused where it is not JSON."""

from __future__ import annotations

import json

import pytest

from headwater.kernel import json_text
from headwater.services.pipelines.definition import validate_filter_text


@pytest.mark.parametrize(
    ("text", "fragment", "at"),
    [
        ('{"a": "\\ud800"}', "\\ud800 is a lone surrogate", 7),
        ('{"\\udc00": 1}', "\\udc00 is a lone surrogate", 2),
        ('["ok", "x\\uD83Dy"]', "\\ud83d is a lone surrogate", 9),
        ("[1, NaN]", "NaN is not a JSON number", 4),
        ('{"a": -Infinity}', "-Infinity is not a JSON number", 6),
        # Python's json read these as infinities, which orjson then wrote as null: a
        # json_parse() of them was imported as nulls without a word.
        ("[1, 1e400]", "1e400 is past the largest number", 4),
        ('{"a": -1.5E999}', "-1.5E999 is past the largest number", 6),
        (b'["\xed\xa0\x80"]', "not utf-8 text", 2),
    ],
)
def test_what_is_not_json_is_refused_with_its_position(
    text: str | bytes, fragment: str, at: int
) -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        json_text.loads(text)
    assert fragment in caught.value.msg
    assert caught.value.pos == at


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('["\\ud83d\\ude00"]', ["😀"]),
        ('["\\\\ud800"]', ["\\ud800"]),  # an escaped backslash, then text
        ("[123456789012345678901234567890]", [123456789012345678901234567890]),
        ("[1e-400, 1.7976931348623157e308]", [0.0, 1.7976931348623157e308]),
        (b'{"a": "\xc3\xa9"}', {"a": "é"}),
    ],
)
def test_json_is_read_as_python_reads_it(text: str | bytes, value: object) -> None:
    assert json_text.loads(text) == value


def test_a_definition_file_with_half_a_character_is_a_problem_at_its_line() -> None:
    """A filter file's ``"\\ud800"`` was read and saved: the pipeline list then failed."""
    text = '{"conditions": [\n  {"property": "email", "operator": "is", "values": ["\\ud800"]}\n]}'
    [problem] = validate_filter_text(text)
    assert "lone surrogate" in problem.message
    assert problem.line == 2
