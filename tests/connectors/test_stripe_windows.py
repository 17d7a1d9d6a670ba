"""Window planning and pagination: the union of all windows is exactly the full set."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.adapters.connectors.stripe.errors import MalformedResponse, PaginationLoop
from headwater.adapters.connectors.stripe.pagination import Cursor, parse_list
from headwater.adapters.connectors.stripe.windows import PAGES_PER_WINDOW, Window, plan_window


def customers(createds: list[int]) -> list[dict[str, Any]]:
    """Customers ordered as Stripe lists them: newest first, ties by id descending."""
    rows = [{"id": f"cus_{i:06d}", "created": c} for i, c in enumerate(createds)]
    return sorted(rows, key=lambda r: (r["created"], r["id"]), reverse=True)


def list_page(
    rows: list[dict[str, Any]], window: Window, after: str | None, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """What GET /v1/customers returns for a window and a starting_after cursor."""
    hi = window.hi if window.hi is not None else 2**62
    inside = [r for r in rows if window.lo <= r["created"] < hi]
    if after is not None:
        index = next(i for i, r in enumerate(inside) if r["id"] == after)
        inside = inside[index + 1 :]
    return inside[:limit], len(inside) > limit


def read_all(rows: list[dict[str, Any]], root: Window, limit: int) -> tuple[list[str], int]:
    """Drive plan_window the way the parallel reader does, sequentially."""
    seen: list[str] = []
    pending = [root]
    calls = 0
    while pending:
        window = pending.pop()
        data, more = list_page(rows, window, None, limit)
        calls += 1
        plan = plan_window(window, data, more)
        pending.extend(plan.children)
        seen.extend(r["id"] for r in plan.emit)
        if plan.sequential:
            cursor = Cursor("starting_after")
            cursor.advance(data, more)
            while not cursor.finished:
                data, more = list_page(rows, window, cursor.token, limit)
                calls += 1
                seen.extend(r["id"] for r in data)
                cursor.advance(data, more)
    return seen, calls


@settings(max_examples=200, deadline=None)
@given(
    createds=st.lists(st.integers(min_value=1_300_000_000, max_value=1_300_000_400), max_size=120),
    limit=st.integers(min_value=1, max_value=10),
    lower=st.sampled_from([0, 1_300_000_000, 1_300_000_100]),
)
def test_windows_read_every_customer_exactly_once(
    createds: list[int], limit: int, lower: int
) -> None:
    rows = customers(createds)
    seen, _ = read_all(rows, Window(lower), limit)
    expected = [r["id"] for r in rows if r["created"] >= lower]
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(expected)


def test_spread_out_customers_cost_few_calls_beyond_one_per_page() -> None:
    createds = [1_600_000_000 + (i * 7919) % 60_000_000 for i in range(3000)]
    seen, calls = read_all(customers(createds), Window(0), 100)
    assert len(seen) == len(set(seen)) == 3000
    assert calls <= 60  # 30 pages of data plus the search from second 0


def test_dense_second_is_paged_sequentially_and_sparse_ranges_are_bisected() -> None:
    rows = customers([1_700_000_000] * 250 + list(range(1_600_000_000, 1_600_000_300)))
    seen, calls = read_all(rows, Window(0), 100)
    assert sorted(seen) == sorted(r["id"] for r in rows)
    # 550 customers at 100 a page need at least 6 calls; finding the data from a lower
    # bound of 0 and bisecting must not cost much more than that.
    assert 6 <= calls <= 20


def test_first_page_keeps_only_seconds_it_holds_completely() -> None:
    data = [{"id": "a", "created": 900}, {"id": "b", "created": 899}, {"id": "c", "created": 899}]
    plan = plan_window(Window(0, 1000), data, True)
    # Second 899 may hold more customers than the page showed: only "a" is complete.
    assert [r["id"] for r in plan.emit] == ["a"]
    near = 900 - 2 * PAGES_PER_WINDOW
    assert plan.children == [Window(near, 900), Window(0, near)]
    assert not plan.sequential


def test_far_range_is_planned_in_as_many_windows_as_the_read_keeps_in_flight() -> None:
    data = [{"id": "a", "created": 10_000}, {"id": "b", "created": 9_999}]
    span = 2 * PAGES_PER_WINDOW
    plan = plan_window(Window(0), data, True, spread=3)
    assert plan.children == [
        Window(10_000 - span, 10_000),
        Window(10_000 - 2 * span, 10_000 - span),
        Window(10_000 - 3 * span, 10_000 - 2 * span),
        Window(0, 10_000 - 3 * span),
    ]
    # Never so many that the window for the rest would be empty.
    few = plan_window(Window(10_000 - 3 * span), data, True, spread=10)
    assert few.children[-1] == Window(10_000 - 3 * span, 10_000 - 2 * span)
    assert len(few.children) == 3


def test_data_near_by_is_paged_on_rather_than_split() -> None:
    data = [{"id": "a", "created": 90}, {"id": "b", "created": 89}]
    plan = plan_window(Window(0, 100), data, True)
    assert plan.emit == data
    assert plan.sequential
    assert plan.children == []


def test_far_past_goes_in_one_window_and_data_nearby_in_another() -> None:
    data = [{"id": "a", "created": 1000}, {"id": "b", "created": 990}]
    plan = plan_window(Window(0), data, True)
    # The page spanned 11 s; PAGES_PER_WINDOW page spans near the data, the rest (mostly
    # empty) apart.
    near = 991 - 11 * PAGES_PER_WINDOW
    assert plan.children == [Window(near, 991), Window(0, near)]


def test_small_remainder_is_paged_sequentially() -> None:
    data = [{"id": "a", "created": 30}, {"id": "b", "created": 20}]
    plan = plan_window(Window(10, 100), data, True)
    assert plan.emit == data
    assert plan.sequential
    assert plan.children == []


def test_window_of_one_second_continues_with_starting_after() -> None:
    data = [{"id": "a", "created": 5}, {"id": "b", "created": 5}]
    plan = plan_window(Window(5, 6), data, True)
    assert plan.emit == data
    assert plan.sequential
    assert plan.children == []


def test_unsorted_page_is_discarded_and_the_window_halved() -> None:
    data = [{"id": "a", "created": 10}, {"id": "b", "created": 40}]
    plan = plan_window(Window(0, 100), data, True)
    assert plan.emit == []
    assert plan.children == [Window(0, 50), Window(50, 100)]


def test_last_page_is_emitted_whole() -> None:
    data = [{"id": "a", "created": 10}]
    plan = plan_window(Window(0), data, False)
    assert plan.emit == data
    assert plan.children == []


def test_window_params_are_half_open() -> None:
    assert Window(10, 20).params() == {"created[gte]": 10, "created[lt]": 20}
    assert Window(10).params() == {"created[gte]": 10}
    with pytest.raises(ValueError, match="cannot halve"):
        Window(10, 11).halves()


def test_cursor_raises_when_a_token_repeats() -> None:
    cursor = Cursor("starting_after")
    cursor.advance([{"id": "cus_1"}, {"id": "cus_2"}], True)
    assert cursor.params() == {"starting_after": "cus_2"}
    cursor.advance([{"id": "cus_3"}], True)
    with pytest.raises(PaginationLoop, match="repeated the token cus_2"):
        cursor.advance([{"id": "cus_2"}], True)


def test_ending_before_cursor_moves_to_the_newest_item() -> None:
    cursor = Cursor("ending_before", start="evt_0")
    cursor.advance([{"id": "evt_9"}, {"id": "evt_5"}], True)
    assert cursor.params() == {"ending_before": "evt_9"}
    with pytest.raises(PaginationLoop):
        cursor.advance([{"id": "evt_0"}], True)
    cursor = Cursor("ending_before", start="evt_0")
    cursor.advance([], True)
    assert cursor.finished


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"data": "x", "has_more": False}, "no data/has_more"),
        ({"data": []}, "no data/has_more"),
        ({"data": [], "has_more": True}, "has_more with no data"),
        ({"data": [{"id": 3, "created": 1}], "has_more": False}, "item 0"),
        ({"data": [{"id": "a", "created": "1"}], "has_more": False}, "item 0"),
    ],
)
def test_malformed_lists_are_rejected(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(MalformedResponse, match=fragment):
        parse_list(body, "GET /v1/customers")
