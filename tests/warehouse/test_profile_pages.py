"""Listing profiles in the warehouse (`Warehouse.profile_page`): newest first, a page
continuing from its cursor profile's place whatever changed since, and a search over
every value that takes ``%`` and ``_`` literally, on both engines."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from headwater.adapters.warehouse import Warehouse
from headwater.adapters.warehouse.profile_store import ProfileRecord, ProfileWrite
from headwater.kernel.errors import InvalidInput

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _ids(n: int) -> list[str]:
    return sorted(str(uuid.UUID(int=k + 1)) for k in range(n))


def _put(warehouse: Warehouse, *profiles: ProfileRecord) -> None:
    warehouse.apply_profiles(ProfileWrite(upserts=list(profiles)))


def _pages(warehouse: Warehouse, limit: int, search: str | None = None) -> list[list[str]]:
    out: list[list[str]] = []
    after = None
    while True:
        rows = warehouse.profile_page(search, after, limit)
        if not rows:
            return out
        out.append([r.id for r in rows])
        after = rows[-1].id


def test_pages_are_newest_first_and_continue_from_their_cursor(warehouse: Warehouse) -> None:
    ids = _ids(7)
    # Two profiles share a time: the id (descending) orders them.
    times = [T0 + timedelta(hours=h) for h in (1, 2, 3, 3, 5, 6, 7)]
    _put(
        warehouse,
        *(
            ProfileRecord(i, t, 1, {"email": f"p{k}@x.io"})
            for k, (i, t) in enumerate(zip(ids, times, strict=True))
        ),
    )
    newest_first = [ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]]
    assert _pages(warehouse, 3) == [newest_first[:3], newest_first[3:6], newest_first[6:]]
    first = warehouse.profile_page(None, None, 3)
    # One of the next page's profiles changes: it moves to the front; the rest follow
    # the cursor, nothing repeated.
    _put(warehouse, ProfileRecord(ids[2], T0 + timedelta(hours=9), 1, {"email": "moved@x.io"}))
    rest = warehouse.profile_page(None, first[-1].id, 10)
    assert [r.id for r in rest] == [ids[3], ids[1], ids[0]]
    assert warehouse.count_matching_profiles() == 7
    with pytest.raises(InvalidInput, match="list again"):
        warehouse.profile_page(None, str(uuid.UUID(int=999)), 3)


def test_search_matches_any_value_case_insensitively_and_literally(
    warehouse: Warehouse,
) -> None:
    ids = _ids(4)
    _put(
        warehouse,
        ProfileRecord(ids[0], T0, 1, {"email": "Ann@Example.com"}),
        ProfileRecord(ids[1], T0, 2, {"email": "bob@example.com", "order": "100%_sure", "age": 41}),
        ProfileRecord(ids[2], T0, 1, {"email": "carol@other.io"}),
        ProfileRecord(ids[3], T0, 1, {"email": "dan@example.com", "address_city": "ΟΔΟΣ İstanbul"}),
    )
    assert [r.id for r in warehouse.profile_page("ANN@", None, 10)] == [ids[0]]
    # The text as stored finds itself, whatever the engine makes of its case.
    assert [r.id for r in warehouse.profile_page("ΟΔΟΣ İstanbul", None, 10)] == [ids[3]]
    assert [r.id for r in warehouse.profile_page("%_", None, 10)] == [ids[1]]
    assert [r.id for r in warehouse.profile_page("_", None, 10)] == [ids[1]]
    assert [r.id for r in warehouse.profile_page("41", None, 10)] == [ids[1]]  # any type
    assert warehouse.count_matching_profiles("example.com") == 3
    assert _pages(warehouse, 1, "example") == [[ids[3]], [ids[1]], [ids[0]]]


def test_a_page_after_a_place_goes_on_when_that_profile_changes(warehouse: Warehouse) -> None:
    """A listing page after page (the CLI's `profiles list`, 10,000 a page) named the
    last profile read: when a run changed that profile meanwhile, the next page began
    again at the top (every profile listed twice), or failed if it was merged away."""
    ids = _ids(6)
    _put(
        warehouse,
        *(
            ProfileRecord(i, T0 + timedelta(hours=k), 1, {"email": f"p{k}@x.io"})
            for k, i in enumerate(ids)
        ),
    )
    first = warehouse.profile_page(None, None, 3)
    assert [r.id for r in first] == [ids[5], ids[4], ids[3]]
    _put(warehouse, ProfileRecord(ids[3], T0 + timedelta(days=1), 2, {"email": "moved@x.io"}))
    by_id = [r.id for r in warehouse.profile_page(None, first[-1].id, 10)]
    assert by_id == [ids[5], ids[4], ids[2], ids[1], ids[0]]  # from its new place: repeats
    rest = warehouse.profile_page(None, (first[-1].updated_at, first[-1].id), 10)
    assert [r.id for r in rest] == [ids[2], ids[1], ids[0]]
    warehouse.apply_profiles(ProfileWrite(removed=[ids[3]]))
    gone = warehouse.profile_page(None, (first[-1].updated_at, first[-1].id), 10)
    assert [r.id for r in gone] == [ids[2], ids[1], ids[0]]  # merged away: still goes on
