"""The reading process's view of a list page (`paging_view`): what paging reads of it,
accepted and refused exactly as the page decoded whole (`json_object`)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.adapters.connectors.stripe.errors import MalformedResponse
from headwater.adapters.connectors.stripe.offload import _page_data
from headwater.adapters.connectors.stripe.pagination import json_object, paging_view, parse_list

ABSENT = object()

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
fields = st.just(ABSENT) | values | st.text(min_size=1, max_size=12) | st.integers(0, 2**40)


@st.composite
def items(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(values)  # not an object
    item = {k: v for k, v in (("id", draw(fields)), ("created", draw(fields))) if v is not ABSENT}
    item.update(draw(st.dictionaries(st.sampled_from(["email", "metadata", "x"]), values)))
    return item


@st.composite
def pages(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(values)  # not even an object
    page: dict[str, Any] = {"object": "list", "url": "/v1/customers"}
    data = draw(st.lists(items(), max_size=6) | st.just(ABSENT) | values)
    has_more = draw(st.booleans() | st.just(ABSENT) | values)
    if data is not ABSENT:
        page["data"] = data
    if has_more is not ABSENT:
        page["has_more"] = has_more
    return page


def outcome(body: dict[str, Any] | None) -> Any:
    """What paging makes of a decoded body: None, the error, or each item's id and
    created and has_more."""
    if body is None:
        return None
    try:
        data, has_more = parse_list(body, "GET /v1/customers")
    except MalformedResponse as exc:
        return ("refused", str(exc))
    return ([(r["id"], r["created"]) for r in data], has_more)


@settings(max_examples=400, deadline=None)
@given(pages())
def test_paging_reads_a_page_as_its_whole_decoding_does(page: Any) -> None:
    for raw in (json.dumps(page).encode(), json.dumps(page, ensure_ascii=False).encode()):
        assert outcome(paging_view(raw)) == outcome(json_object(raw))


def test_the_view_holds_only_what_paging_reads() -> None:
    page = {
        "object": "list",
        "data": [
            {"id": "cus_2", "created": 20, "email": "a@b.c", "address": {"city": "X"}},
            {"id": {"nested": 1}, "created": [1], "metadata": {}},
            7,
        ],
        "has_more": True,
        "url": "/v1/customers",
    }
    view = paging_view(orjson.dumps(page))
    assert view == {
        "data": [{"id": "cus_2", "created": 20}, {"id": None, "created": None}, None],
        "has_more": True,
    }


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b'"a string"',
        b'{"data": [], "has_more": tru',  # cut short
        b'{"data": [], "has_more": true} x',  # trailing text
        b'{"data": ["\xff"], "has_more": false}',  # not UTF-8
        b'{"data": ["\\ud800"], "has_more": false}',  # a lone surrogate
        b'{"data": [1e400], "has_more": false}',  # a number out of range
    ],
)
def test_what_is_no_json_object_is_refused_by_both(raw: bytes) -> None:
    assert paging_view(raw) is None
    assert json_object(raw) is None


def test_an_integer_past_64_bits_is_left_to_orjson() -> None:
    # simdjson refuses it; orjson reads it as a float: the page is read, as the run will.
    raw = b'{"data": [{"id": "cus_1", "created": 5, "balance": 123456789012345678901234567890}],'
    raw += b' "has_more": false}'
    assert outcome(paging_view(raw)) == ([("cus_1", 5)], False)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"data": [{"id": "cus_1"}], "has_more": fal', "could not be decoded"),
        (b'{"has_more": false}', "could not be decoded"),
        (b"[1, 2]", "could not be decoded"),
        (b'{"data": {"id": "x"}, "has_more": false}', "no list of objects"),
        (b'{"data": [{"id": "x"}, 3], "has_more": false}', "no list of objects"),
    ],
)
def test_a_page_the_run_cannot_decode_fails_the_read_clearly(raw: bytes, fragment: str) -> None:
    with pytest.raises(MalformedResponse, match=fragment) as info:
        _page_data(raw)
    assert "GET /v1/customers" in str(info.value)
