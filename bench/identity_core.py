"""Identity resolution core (pure Python, in-memory store) against a group-by yardstick.

    python bench/identity_core.py [--identities 1000000] [--changes 1000] [--seed 7]

Synthetic identities over two pipelines on two connections: about 30% share an email
with an identity of the other pipeline (in case and whitespace variants), 10% have only
a phone, 20% a phone besides the email.  Prints, measured in this run:

- the yardstick: one pass that normalises every email and groups identities by it (the
  least any resolution must do), and the full rebuild's time as a multiple of it;
- growth: rebuild at a quarter of the identities vs all of them (linear is 4);
- incremental: resolving after `--changes` changed identities (half move to another
  customer's email: merges; half to a fresh email: splits) as a fraction of a rebuild;
- peak RSS of the process.

The warehouse-side figures (candidates found by SQL) are for bench/identity.py, once
the core is wired into the warehouse; this measures only the Python part.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from headwater.kernel.model import DEFAULT_MODEL
from headwater.services.identity import (
    Context,
    Identity,
    IdentityKey,
    MemoryIdentityStore,
    identity_settings,
    rebuild,
    resolve_changes,
)
from headwater.services.identity.settings import TRIMMED
from headwater.services.pipelines.engine import fewer_collections

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = identity_settings(DEFAULT_MODEL, ["email", "phone"])


def synthetic(n: int, seed: int) -> list[Identity]:
    return list(synthetic_stream(n, seed))


def synthetic_stream(n: int, seed: int, realistic: bool = False) -> Iterator[Identity]:
    """The identities of `synthetic`, one at a time (the warehouse bench never holds
    them all: its memory is what it measures).  `realistic` adds what real customers
    carry besides (`realistic_values`), with the same identifiers and links."""
    rand = random.Random(seed)
    half = n // 2
    for i in range(n):
        pipeline, connection = ("pl_a", "conn_a") if i < half else ("pl_b", "conn_b")
        r = rand.random()
        if i >= half and r < 0.6:  # 60% of pl_b = 30% of all: someone from pl_a again
            email: str | None = f"user{rand.randrange(half)}@shop.io"
            if r < 0.1:
                email = f"  {email.upper()} "
        else:
            email = f"user{i}@shop.io"
        phone = f"+1 555 {i:07d}" if rand.random() < 0.2 else None
        if rand.random() < 0.1:
            email, phone = None, f"+1 555 {rand.randrange(n):07d}"
        values: dict[str, Any] = {"email": email, "phone": phone, "first_name": f"n{i}"}
        if realistic:
            values.update(realistic_values(i))
        at = T0 + timedelta(seconds=rand.randrange(10**6))
        yield Identity(IdentityKey(pipeline, f"cus_{i:08d}"), connection, at, values)


def realistic_values(i: int) -> dict[str, Any]:
    """The default Customer Model's other columns, filled as a real Stripe account's
    customers often are (about 250 bytes a row: an address, a currency, metadata)."""
    return {
        "first_name": ("Ada", "Grace", "Alan", "Edsger", "Barbara")[i % 5],
        "last_name": f"Lastname{i % 977}son",
        "address_line1": f"{i % 9999} Market Street",
        "address_line2": f"Suite {i % 500}" if i % 3 == 0 else None,
        "address_city": ("San Francisco", "Paris", "Berlin", "Tokyo")[i % 4],
        "address_postal_code": f"{10000 + i % 89999}",
        "address_state": "CA" if i % 4 == 0 else None,
        "address_country": ("US", "FR", "DE", "JP")[i % 4],
        "currency": ("usd", "eur", "eur", "jpy")[i % 4],
        "created_at": T0 - timedelta(days=i % 2000),
        "metadata": {"plan": ("free", "pro", "team")[i % 3], "ref": f"r{i}", "segment": "smb"},
    }


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def yardstick(identities: list[Identity]) -> int:
    groups: dict[str, list[IdentityKey]] = {}
    for identity in identities:
        email = identity.values.get("email")
        if isinstance(email, str):
            groups.setdefault(email.strip(TRIMMED).lower(), []).append(identity.key)
    return len(sorted(groups))


def loaded(identities: list[Identity]) -> MemoryIdentityStore:
    """The identities in an in-memory store.  The store stands for the warehouse: its
    objects are frozen so that the cyclic collector does not walk them on every
    collection during the timed part (it would never walk warehouse rows; without the
    freeze, collections make the rebuild grow about 5.5x for 4x the identities)."""
    store = MemoryIdentityStore(SETTINGS)
    for identity in identities:
        store.put(identity)
    gc.collect()
    gc.freeze()
    return store


def rebuild_time(store: MemoryIdentityStore, run: str) -> float:
    context = Context(run, T0, ("pl_a", "pl_b"))
    with fewer_collections():  # as in a run: the cyclic GC is not what is measured
        seconds, plan = timed(lambda: rebuild(store, SETTINGS, context))
    store.apply(plan)
    return float(seconds)


def change(store: MemoryIdentityStore, count: int, seed: int) -> tuple[set[IdentityKey], set[str]]:
    rand = random.Random(seed)
    keys = sorted(store.rows)
    touched: set[IdentityKey] = set()
    for n, key in enumerate(rand.sample(keys, count)):
        old = store.rows[key]
        if n % 2:
            other = store.rows[rand.choice(keys)].values.get("email")
            email = other if isinstance(other, str) else f"fresh{n}@shop.io"
        else:
            email = f"fresh{n}@shop.io"
        at = T0 + timedelta(days=30, seconds=n)
        store.put(Identity(key, old.connection_id, at, {**old.values, "email": email}))
        touched.add(key)
    return touched, set()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    n = args.identities

    quarter = synthetic(n // 4, args.seed)
    small = rebuild_time(loaded(quarter), "rb_quarter")
    del quarter

    everyone = synthetic(n, args.seed)
    with fewer_collections():
        start = time.perf_counter()
        yardstick(everyone)
        base = time.perf_counter() - start
    store = loaded(everyone)
    del everyone
    full = rebuild_time(store, "rb_full")
    profiles = len(store.profile_rows)

    touched, formers = change(store, args.changes, args.seed + 1)
    context = Context("run_changes", T0 + timedelta(days=31), ("pl_a", "pl_b"))
    with fewer_collections():
        incremental, plan = timed(
            lambda: resolve_changes(store, SETTINGS, context, touched, formers)
        )
    store.apply(plan)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    print(f"identities            {n:>12,}   profiles {profiles:,}")
    print(f"yardstick (group by)  {base:>12.3f} s")
    print(f"rebuild               {full:>12.3f} s   = {full / base:.1f} x yardstick")
    print(f"rebuild at n/4        {small:>12.3f} s   growth = {full / small:.2f} (linear: 4)")
    print(
        f"incremental           {incremental:>12.4f} s   = {incremental / full:.4f} of a rebuild"
        f" ({args.changes:,} changed, {plan.considered:,} identities considered,"
        f" {len(plan.changes)} merges/splits)"
    )
    print(f"peak RSS              {rss:>12.0f} MiB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
