"""The compact customer store and the rendered JSON, in process (no HTTP)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from headwater.sandbox.config import SandboxConfig
from headwater.sandbox.customers import new_customer
from headwater.sandbox.generate import populate
from headwater.sandbox.pages import CreatedRange
from headwater.sandbox.service import Sandbox
from headwater.sandbox.snapshot import StateFileError, load, save
from headwater.sandbox.store import CustomerStore, created_in, email_in

CLOCK = 1_780_000_000.0
ALL = CreatedRange()


def _sandbox(count: int, seed: int = 5) -> Sandbox:
    sandbox = Sandbox(SandboxConfig(seed=seed, clock_start=CLOCK))
    populate(sandbox, count, seed, 30)
    return sandbox


def _ids(blobs: list[bytes]) -> list[str]:
    return [orjson.loads(b)["id"] for b in blobs]


def test_rendering_is_canonical_json_in_stripes_key_order() -> None:
    keys = list(new_customer("cus_x", 0, "ABC"))
    for key, customer_id, blob in _sandbox(2000).customers.items():
        parsed = orjson.loads(blob)
        assert list(parsed) == keys, customer_id
        assert orjson.dumps(parsed) == blob  # escaping and number forms match orjson's
        assert parsed["id"] == customer_id
        assert created_in(blob) == parsed["created"] == key >> 32
        assert email_in(blob) == parsed["email"]


def test_mutations_keep_order_lookups_and_the_email_index() -> None:
    sandbox = _sandbox(300)
    store = sandbox.customers
    emails = {orjson.loads(b)["email"] for _, _, b in store.items()} - {None}
    some = sorted(emails)[0]
    before, _ = store.page(ALL, 100, email=some)  # builds the email index
    target = _ids(before)[0]
    sandbox.update(target, {"email": "moved@example.com", "name": "Moved"}, None)
    assert target not in _ids(store.page(ALL, 100, email=some)[0])
    moved, _ = store.page(ALL, 100, email="moved@example.com")
    assert _ids(moved) == [target]
    assert orjson.loads(moved[0])["name"] == "Moved"
    newest = orjson.loads(sandbox.create({"email": "moved@example.com"}, None))["id"]
    assert _ids(store.page(ALL, 100, email="moved@example.com")[0]) == [newest, target]
    sandbox.delete(target, None)
    assert _ids(store.page(ALL, 100, email="moved@example.com")[0]) == [newest]
    assert len(store) == 300
    assert target not in store
    # A deleted customer still works as a cursor, and every page is in key order.
    older, _ = store.page(ALL, 5, after=target)
    assert all(created_in(b) <= created_in(older[0]) for b in older)
    full = [b for _, _, b in store.items()]
    listed: list[bytes] = []
    cursor = None
    while True:
        page, more = store.page(ALL, 37, after=cursor)
        listed += page
        if not more:
            break
        cursor = _ids(page)[-1]
    assert listed == full[::-1]


def test_extend_rejects_duplicates_and_disorder() -> None:
    store = CustomerStore()
    store.extend(["cus_a", "cus_b"], [10, 10], [b"{}", b"{}"])
    assert store.seq == 2
    assert len(store) == 2
    with pytest.raises(ValueError, match="duplicate"):
        store.extend(["cus_c", "cus_a"], [11, 12], [b"{}", b"{}"])
    with pytest.raises(ValueError, match="newer"):
        store.extend(["cus_d"], [5], [b"{}"])
    with pytest.raises(ValueError, match="newer"):
        store.extend(["cus_e", "cus_f"], [20, 19], [b"{}", b"{}"])
    assert len(store) == 2
    assert store.isdisjoint(["cus_c", "cus_d", "cus_e"])


def test_snapshot_round_trip_and_format_1(tmp_path: Path) -> None:
    sandbox = _sandbox(50)
    sandbox.update(next(iter(sandbox.customers.items()))[1], {"name": "Renamed"}, None)
    path = tmp_path / "state.tsv"
    save(sandbox, str(path))
    again = Sandbox(SandboxConfig(seed=5, clock_start=CLOCK))
    assert load(again, str(path))
    assert list(again.customers.items()) == list(sandbox.customers.items())
    # Format 1 put the email between id and JSON; such files still load.
    old = tmp_path / "old.tsv"
    lines = [b'H\t{"format":1,"clock_offset":0.0,"seq":1}']
    blob = b'{"id":"cus_old","object":"customer","created":5,"email":"a@b.c"}'
    lines.append(b'C\t%d\tcus_old\t"a@b.c"\t%s' % ((5 << 32) | 1, blob))
    old.write_bytes(b"\n".join(lines) + b"\n")
    restored = Sandbox(SandboxConfig(seed=5))
    assert load(restored, str(old))
    assert restored.customers.get("cus_old") == blob
    assert restored.customers.page(ALL, 10, email="a@b.c")[0] == [blob]


def test_ids_carry_on_from_the_snapshot(tmp_path: Path) -> None:
    sandbox = Sandbox(SandboxConfig(seed=5, clock_start=CLOCK))
    first = [orjson.loads(sandbox.create({}, None))["id"] for _ in range(3)]
    path = tmp_path / "state.tsv"
    save(sandbox, str(path))
    again = Sandbox(SandboxConfig(seed=5, clock_start=CLOCK))
    assert load(again, str(path))
    # The restored sandbox draws exactly what the saved one would have drawn next.
    made_again, made_there = again.create({}, None), sandbox.create({}, None)
    assert orjson.loads(made_again)["id"] == orjson.loads(made_there)["id"]
    assert again.ids.make("evt_", 24) == sandbox.ids.make("evt_", 24)
    assert again.webhooks.ids.make("we_", 24) == sandbox.webhooks.ids.make("we_", 24)
    # A snapshot saved before positions were kept: the seed's sequence is left behind.
    header, _, rest = path.read_bytes().partition(b"\n")
    old = orjson.loads(header[2:])
    del old["ids"]
    path.write_bytes(b"H\t" + orjson.dumps(old) + b"\n" + rest)
    restored = Sandbox(SandboxConfig(seed=5, clock_start=CLOCK))
    assert load(restored, str(path))
    fresh = Sandbox(SandboxConfig(seed=5, clock_start=CLOCK))
    made = orjson.loads(restored.create({}, None))["id"]
    assert made not in first
    assert made != orjson.loads(fresh.create({}, None))["id"]
    assert restored.ids.make("evt_", 24) != fresh.ids.make("evt_", 24)


@pytest.mark.parametrize("offset", [1e300, -1e300])
def test_a_snapshot_clock_the_sandbox_cannot_show_is_refused(tmp_path: Path, offset: float) -> None:
    path = tmp_path / "state.tsv"
    path.write_bytes(b"H\t" + orjson.dumps({"format": 2, "clock_offset": offset, "seq": 0}))
    with pytest.raises(StateFileError, match=r"state\.tsv:1: .*sandbox clock"):
        load(Sandbox(SandboxConfig()), str(path))
