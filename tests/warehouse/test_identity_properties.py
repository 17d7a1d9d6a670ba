"""Property tests of identity resolution on the real engines (DuckDB and PostgreSQL).

The sequences of `tests/identity/test_properties.py` (creates, updates whose email
changes merge and split profiles, deletes, filter changes), played through real
warehouse writes and the service's resolution after each step, checked against the
brute-force reference after every step (`identity_world.check`).  Example counts are
bounded so that each engine stays well under a minute.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.identity.test_properties import (
    IDENTIFIER_SETS,
    Create,
    Delete,
    FilterChange,
    Update,
    identities,
    play,
    steps,
)
from tests.identity.world import identity, settings_for

from headwater.adapters.warehouse import Warehouse
from headwater.services.identity import Identity, IdentityKey

from .conftest import Engine
from .identity_world import TABLES, WarehouseWorld

pytestmark = pytest.mark.slow
BOUNDED = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def fresh(warehouse: Warehouse, engine: Engine) -> None:
    """Empty every table (one warehouse serves all the examples of a test)."""
    for table in TABLES:
        engine.raw(warehouse, f"DELETE FROM {{s}}.{table}")


@BOUNDED
@given(
    identifiers=st.sampled_from(IDENTIFIER_SETS),
    sequence=st.lists(steps, min_size=1, max_size=8),
    set_based=st.booleans(),
)
def test_random_change_sequences_on_the_warehouse(
    wh: Warehouse,
    engine: Engine,
    identifiers: tuple[str, ...],
    sequence: list[Create | Update | Delete | FilterChange],
    set_based: bool,
) -> None:
    """Every step resolved incrementally, or (`set_based`) by the set-based rebuild."""
    fresh(wh, engine)
    world = WarehouseWorld(wh, settings_for(*identifiers), rebuild=set_based)
    for step in sequence:
        play(world, step)  # type: ignore[arg-type]


@BOUNDED
@given(rows=st.lists(identities(), min_size=1, max_size=10), data=st.data())
def test_email_changes_merge_and_split_on_the_warehouse(
    wh: Warehouse, engine: Engine, rows: list[Identity], data: st.DataObject
) -> None:
    fresh(wh, engine)
    world = WarehouseWorld(wh, settings_for("email", "phone"))
    world.run(puts=list({r.key: r for r in rows}.values()))
    keys: list[IdentityKey] = sorted(world.store.rows)
    for _ in range(3):
        chosen = data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3, unique=True))
        target = data.draw(st.sampled_from(("ann@shop.io", " BOB@shop.io", None)))
        world.run(
            puts=[
                identity(k.pipeline_id, k.source_id, target, world.store.rows[k].values["phone"])
                for k in chosen
            ]
        )
