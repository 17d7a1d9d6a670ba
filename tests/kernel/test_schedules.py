"""Schedule slots: a stable per-pipeline offset that spreads pipelines over the period."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

from headwater.kernel.entities import SCHEDULES, new_id
from headwater.kernel.schedules import PERIODS, next_slot, schedule_offset

HOUR = timedelta(hours=1)
NOW = datetime(2026, 11, 30, 17, 42, 13, 512_000, tzinfo=UTC)


def test_every_schedule_but_off_has_a_period() -> None:
    assert set(PERIODS) == set(SCHEDULES) - {"off"}
    assert next_slot("off", "pl_1", NOW) is None


def test_a_thousand_hourly_pipelines_spread_over_the_hour() -> None:
    ids = [new_id("pl") for _ in range(1000)]
    seconds = Counter(int(schedule_offset(i, HOUR).total_seconds()) for i in ids)
    busiest_second, most = seconds.most_common(1)[0]
    assert most <= 10, f"second {busiest_second} holds {most} of 1,000 pipelines (over 1%)"
    # Spread over the whole hour, not bunched in part of it: every quarter gets some.
    quarters = Counter(s // 900 for s in seconds.elements())
    assert sorted(quarters) == [0, 1, 2, 3]
    assert min(quarters.values()) > 150


def test_the_offset_is_the_same_in_another_process() -> None:
    ids = ["pl_0a1b2c3d4e5f", "pl_ffffffffffff", "pl_123456789abc"]
    code = (
        "import sys; from datetime import timedelta;"
        "from headwater.kernel.schedules import schedule_offset;"
        "print([int(schedule_offset(i, timedelta(hours=1)).total_seconds())"
        " for i in sys.argv[1:]])"
    )
    for seed in ("1", "2"):  # Python's own hash() would differ between these
        out = subprocess.run(
            [sys.executable, "-c", code, *ids],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        assert out.strip() == str([int(schedule_offset(i, HOUR).total_seconds()) for i in ids])


def test_next_slot_is_the_first_slot_strictly_after() -> None:
    for schedule, period in PERIODS.items():
        slot = next_slot(schedule, "pl_abc", NOW)
        assert slot is not None
        assert NOW < slot <= NOW + period
        assert next_slot(schedule, "pl_abc", slot) == slot + period
        assert next_slot(schedule, "pl_abc", slot - timedelta(microseconds=1)) == slot
        offset = schedule_offset("pl_abc", period)
        assert (slot - datetime(1970, 1, 1, tzinfo=UTC) - offset) % period == timedelta(0)


def test_after_downtime_the_next_slot_is_in_the_future_not_a_missed_one() -> None:
    slot = next_slot("1h", "pl_abc", NOW)
    assert slot is not None
    later = slot + 5 * HOUR + timedelta(minutes=7)  # five hourly slots were missed
    following = next_slot("1h", "pl_abc", later)
    assert following is not None
    assert later < following <= later + HOUR


def test_ten_thousand_pipelines_next_slots() -> None:
    ids = [new_id("pl") for _ in range(10_000)]
    for schedule in ("5m", "1h", "24h"):
        period = PERIODS[schedule]
        slots = [next_slot(schedule, i, NOW) for i in ids]
        assert all(s is not None and NOW < s <= NOW + period for s in slots)
        distinct = len(set(slots))
        assert distinct > min(int(period.total_seconds()), 10_000) * 0.5
