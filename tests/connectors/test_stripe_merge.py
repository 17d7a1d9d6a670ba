"""Reducing a batch of customer events to the latest state per customer."""

from __future__ import annotations

from typing import Any

import pytest

from headwater.adapters.connectors.stripe.changes import merge_events
from headwater.adapters.connectors.stripe.errors import MalformedResponse


def event(n: int, kind: str, cid: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"evt_{n}",
        "type": f"customer.{kind}",
        "created": 1000 + n,
        "data": {"object": {"id": cid, **fields}},
    }


def test_single_events_map_to_their_kind() -> None:
    changes = merge_events([event(1, "created", "a"), event(2, "updated", "b", email="x")])
    assert [(c.source_id, c.kind, c.at) for c in changes] == [
        ("a", "created", 1001),
        ("b", "updated", 1002),
    ]
    assert changes[1].record == {"id": "b", "email": "x"}


def test_created_then_updated_stays_created_with_the_latest_record() -> None:
    changes = merge_events([event(1, "created", "a", v=1), event(2, "updated", "a", v=2)])
    assert len(changes) == 1
    assert changes[0].kind == "created"
    assert changes[0].record == {"id": "a", "v": 2}
    assert changes[0].at == 1002


@pytest.mark.parametrize("first", ["created", "updated"])
def test_anything_then_deleted_is_deleted_without_a_record(first: str) -> None:
    changes = merge_events(
        [event(1, first, "a"), event(2, "updated", "a"), event(3, "deleted", "a")]
    )
    assert [(c.kind, c.record, c.at) for c in changes] == [("deleted", None, 1003)]


def test_updates_keep_the_last_state() -> None:
    changes = merge_events([event(1, "updated", "a", v=1), event(2, "updated", "a", v=2)])
    assert [(c.kind, c.record) for c in changes] == [("updated", {"id": "a", "v": 2})]


def test_other_event_types_are_ignored() -> None:
    other = event(1, "created", "a")
    other["type"] = "customer.discount.created"
    assert merge_events([other]) == []


def test_event_without_object_is_a_clear_error() -> None:
    broken = {"id": "evt_7", "type": "customer.updated", "created": 1, "data": {}}
    with pytest.raises(MalformedResponse, match="evt_7"):
        merge_events([broken])
