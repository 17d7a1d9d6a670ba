"""The receiver's look-ups kept a moment: expiry, the size bound, misses unable to push
out what was found, one look-up of an id at a time, and a change made during a look-up
not hidden by it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from headwater.services.webhooks.lookup import MAX_LOOKUPS, Endpoint, Lookups

FOUND = Endpoint("ws_1", datetime(2026, 1, 1, tzinfo=UTC), "encrypted")


class Loads:
    def __init__(self, answer: Endpoint | None = FOUND, pause: float = 0.0) -> None:
        self.count, self.answer, self.pause = 0, answer, pause

    def __call__(self) -> Endpoint | None:
        self.count += 1
        time.sleep(self.pause)
        return self.answer


def test_a_look_up_is_kept_its_seconds_then_made_again() -> None:
    now = [100.0]
    lookups, loads = Lookups(seconds=1.0, clock=lambda: now[0]), Loads(None)
    assert lookups.get(("db", "conn_1"), loads) is None
    now[0] = 100.9
    assert lookups.get(("db", "conn_1"), loads) is None  # "no such connection" is kept too
    assert loads.count == 1
    now[0] = 101.0
    lookups.get(("db", "conn_1"), loads)
    assert loads.count == 2


def test_at_most_max_keys_are_kept_the_least_recently_used_forgotten() -> None:
    lookups, loads = Lookups(max_keys=2), Loads()
    for cid in ("a", "b", "a", "c", "a"):  # c pushes out b, not a (used since)
        assert lookups.get(("db", cid), loads) == FOUND
    assert loads.count == 3
    lookups.get(("db", "b"), loads)
    assert loads.count == 4


def test_a_flood_of_made_up_ids_does_not_push_out_a_real_connection() -> None:
    now = [100.0]
    lookups, real = Lookups(clock=lambda: now[0]), Loads()
    assert lookups.get(("db", "conn_real"), real) == FOUND
    made_up = Loads(None)
    for n in range(MAX_LOOKUPS + 500):  # forged deliveries, each to an id of its own
        assert lookups.get(("db", f"conn_forged_{n}"), made_up) is None
    assert made_up.count == MAX_LOOKUPS + 500
    now[0] = 100.5
    assert lookups.get(("db", "conn_real"), real) == FOUND
    assert real.count == 1  # still served without reading the store
    assert lookups.get(("db", "conn_forged_0"), made_up) is None  # the oldest miss went
    assert made_up.count == MAX_LOOKUPS + 501


def test_misses_are_kept_up_to_their_own_bound() -> None:
    lookups, missing = Lookups(max_keys=1, max_misses=2), Loads(None)
    lookups.get(("db", "real"), Loads())
    for cid in ("x", "y", "x", "z", "x"):  # z pushes out y, not x (used since)
        assert lookups.get(("db", cid), missing) is None
    assert missing.count == 3
    lookups.get(("db", "y"), missing)
    assert missing.count == 4
    found = Loads()
    lookups.get(("db", "real"), found)
    assert found.count == 0


def test_an_id_found_after_a_miss_is_kept_as_found_and_forgotten_in_both() -> None:
    now = [100.0]
    lookups = Lookups(seconds=1.0, max_keys=1, max_misses=1, clock=lambda: now[0])
    assert lookups.get(("db", "conn_1"), Loads(None)) is None
    now[0] = 101.0  # the miss expired; the secret was stored meanwhile
    assert lookups.get(("db", "conn_1"), Loads()) == FOUND
    lookups.get(("db", "made_up"), Loads(None))  # a miss does not push out conn_1
    kept = Loads(None)
    assert lookups.get(("db", "conn_1"), kept) == FOUND
    assert kept.count == 0
    lookups.forget(("db", "conn_1"))
    lookups.forget(("db", "made_up"))
    assert lookups.get(("db", "conn_1"), kept) is None
    assert lookups.get(("db", "made_up"), kept) is None
    assert kept.count == 2


def test_one_look_up_of_an_id_at_a_time_under_a_flood() -> None:
    lookups, loads = Lookups(), Loads(pause=0.2)
    with ThreadPoolExecutor(16) as pool:
        found = list(pool.map(lambda _: lookups.get(("db", "conn_1"), loads), range(64)))
    assert found == [FOUND] * 64
    assert loads.count == 1


def test_forgetting_during_a_look_up_keeps_nothing_it_found() -> None:
    lookups = Lookups()
    started, go_on = threading.Event(), threading.Event()

    def stale() -> Endpoint | None:
        started.set()
        go_on.wait(5)
        return FOUND  # read before the secret changed

    with ThreadPoolExecutor(1) as pool:
        looking = pool.submit(lookups.get, ("db", "conn_1"), stale)
        assert started.wait(5)
        lookups.forget(("db", "conn_1"))  # the secret changed meanwhile
        go_on.set()
        assert looking.result() == FOUND
    fresh = Loads(None)
    assert lookups.get(("db", "conn_1"), fresh) is None
    assert fresh.count == 1
