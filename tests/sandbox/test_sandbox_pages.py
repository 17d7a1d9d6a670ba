"""Page windows and form parsing, checked against brute force."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.sandbox.errors import ApiError
from headwater.sandbox.forms import parse_form
from headwater.sandbox.pages import CreatedRange, make_key, window


@given(
    created=st.lists(st.integers(0, 30), max_size=60),
    limit=st.integers(1, 10),
    low=st.none() | st.integers(-1, 31),
    high=st.none() | st.integers(-1, 31),
    cursor=st.none() | st.tuples(st.booleans(), st.integers(0, 59)),
)
def test_window_matches_brute_force(created, limit, low, high, cursor) -> None:
    keys = sorted(make_key(c, i) for i, c in enumerate(created))
    span = CreatedRange(
        None if low is None else make_key(low, 0), None if high is None else make_key(high, 0)
    )
    inside = [k for k in keys if (low is None or k >= span.low) and (high is None or k < span.high)]
    newest_first = inside[::-1]
    after = before = None
    if cursor and keys:
        is_after, index = cursor
        key = keys[index % len(keys)]
        after, before = (key, None) if is_after else (None, key)
    start, end, has_more = window(keys, span, limit, after, before)
    page = keys[start:end][::-1]
    if before is not None:
        newer = [k for k in newest_first if k > before]
        assert page == newer[-limit:]
        assert has_more == (len(newer) > limit)
    else:
        older = [k for k in newest_first if after is None or k < after]
        assert page == older[:limit]
        assert has_more == (len(older) > limit)


def test_parse_form_nesting() -> None:
    parsed = parse_form(
        b"metadata[plan]=pro&address[city]=Rome&types[]=a&types[]=b&locales[1]=fr"
        b"&locales[0]=en&email=&created[gte]=5"
    )
    assert parsed == {
        "metadata": {"plan": "pro"},
        "address": {"city": "Rome"},
        "types": ["a", "b"],
        "locales": ["en", "fr"],
        "email": "",
        "created": {"gte": "5"},
    }


def test_parse_form_rejects_broken_names() -> None:
    with pytest.raises(ApiError) as caught:
        parse_form(b"metadata[plan=pro")
    assert caught.value.param == "metadata[plan"
