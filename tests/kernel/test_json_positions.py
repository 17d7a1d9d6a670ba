"""Locating values in a JSON text by the path validation reports."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from headwater.kernel.json_positions import value_positions

TEXT = '{\n  "a": [1, {"b": "x\\"y"}],\n  "c.d": {}, "e": []\n}'


def test_every_value_is_located() -> None:
    assert value_positions(TEXT) == {
        "": (1, 1),
        "a": (2, 8),
        "a[0]": (2, 9),
        "a[1]": (2, 12),
        "a[1].b": (2, 18),
        "c.d": (3, 10),
        "e": (3, 19),
    }


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet="ab[]", max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(JSON, st.sampled_from([None, 2]))
def test_positions_point_at_the_values(document: object, indent: int | None) -> None:
    text = json.dumps(document, indent=indent)
    lines = text.split("\n")
    positions = value_positions(text)
    assert positions[""] == (1, 1)
    for line, column in positions.values():
        start = sum(len(x) + 1 for x in lines[: line - 1]) + column - 1
        value, _ = json.JSONDecoder().raw_decode(text, start)  # a whole value starts there
        assert value is not None or text.startswith("null", start)
