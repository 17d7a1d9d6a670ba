"""Customer Model values written and read back on every engine: what each type promises
(README, The mapping language: JSON properties)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from headwater.adapters.warehouse import Warehouse, WriteBatch
from headwater.kernel.records import IdentityRow

from .conftest import Engine

WHEN = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def write(warehouse: Warehouse, values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    warehouse.claim("p1", "run1")
    rows = [IdentityRow(sid, WHEN, v) for sid, v in values.items()]
    result = warehouse.write(WriteBatch("p1", "conn1", "run1", rows, [], None))
    assert result.rejected == []
    return {i["_source_id"]: i for i in warehouse.identities()}


def test_json_numbers_read_back_as_the_same_json_value_on_every_engine(
    warehouse: Warehouse, engine: Engine
) -> None:
    """PostgreSQL's jsonb keeps a number as numeric and writes 1e300 out digit by digit:
    psycopg's json.loads read it back as a 301-digit int, which no JSON encoder of ours
    takes (orjson: 64 bits), so an identity or profile holding it could not be shown by
    the API; DuckDB read it back as the float it was.  Both now read the same value."""
    metadata = {
        "huge": 1e300,
        "past_u64": 1e20,
        "tiny": 5e-324,
        "whole": 1e16,
        "third": 0.1,
        "u64": 2**64 - 1,
        "neg": -(2**63),
        "deep": [{"x": 1.5e-7, "y": [2.5e200]}],
    }
    found = write(warehouse, {"cus_1": {"metadata": metadata}})
    back = found["cus_1"]["metadata"]
    assert back == metadata
    assert orjson.loads(orjson.dumps(back)) == metadata
    assert isinstance(back["huge"], float)
    assert isinstance(back["deep"][0]["y"][0], float)


def test_json_objects_are_compared_as_json_values(warehouse: Warehouse, engine: Engine) -> None:
    """What a JSON property promises (README): the value, as JSON compares it; not its
    spelling.  jsonb orders an object's keys (shortest first) and has no negative zero."""
    given = {"b": 1, "a": {"zz": True, "y": None}, "aa": [3, 1, 2], "neg": -0.0}
    back = write(warehouse, {"cus_1": {"metadata": given}})["cus_1"]["metadata"]
    assert back == given
    assert back["aa"] == [3, 1, 2]  # arrays keep their order
    keys = list(back)
    if engine.name == "postgresql":
        assert keys == ["a", "b", "aa", "neg"]
        assert str(back["neg"]) == "0.0"
    else:
        assert keys == list(given)
        assert str(back["neg"]) == "-0.0"
