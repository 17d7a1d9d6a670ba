"""What the failure-injection tests compare: a pipeline's identities and profiles, as
values that do not depend on run ids, import times or profile ids, and the same from a
fresh full import of the same sandbox (another store, another warehouse)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Any

import stripe

from headwater.kernel.entities import Pipeline
from headwater.kernel.settings import Settings
from headwater.sandbox.testing import RunningSandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.pipelines import manage, runner

#: A mapping with an identifier (email) that links customers into profiles.
MAPPING = {"email": "lower(trim(email))", "first_name": "name", "phone": "phone"}
COLUMNS = ("email", "first_name", "phone")
#: Customers sharing an email: resolution has profiles of several identities to build.
SHARED = ("ann@example.com", "bob@example.com", "cy@example.com")


def seed_shared(sb: RunningSandbox, copies: int = 3) -> None:
    """Add customers whose emails repeat (in another spelling), one profile each email."""
    client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
    for email in SHARED:
        for n in range(copies):
            spelled = f" {email.upper()}" if n % 2 else email
            client.v1.customers.create({"email": spelled, "name": f"{email} {n}"})


def make(app: App, sb: RunningSandbox, rps: float = 200.0, **kw: Any) -> Pipeline:
    """A pipeline of `MAPPING` on a new connection to `sb` (`rps`: its request budget)."""
    conn = connections.add_stripe(app, "sandbox", sb.secret_key, sb.url, rps)
    spec = {"kind": "mapping", "mapping": MAPPING}
    return manage.create(app, conn.id, "p", spec, **kw)


@dataclasses.dataclass(frozen=True)
class Landed:
    """A warehouse's content for one pipeline, comparable across imports."""

    identities: dict[str, tuple[Any, ...]]  # source id -> model values
    profiles: dict[frozenset[str], tuple[Any, ...]]  # member source ids -> values
    pending: int


def landed(app: App, pipeline_id: str, *, resolved: bool = True) -> Landed:
    """What the warehouse holds; `resolved`: every identity is in a profile (none is
    pending), else only the identities are read (profiles may wait on a resolution)."""
    wh = app.warehouse()
    try:
        rows = wh.identities(pipeline_id)
        ids = [r["_source_id"] for r in rows]
        assert len(ids) == len(set(ids)), "duplicate identities"
        values = {r["_source_id"]: tuple(r[c] for c in COLUMNS) for r in rows}
        waiting = len(wh.pending_identities().keys)
        if not resolved:
            return Landed(values, {}, waiting)
        members: dict[str, set[str]] = defaultdict(set)
        for r in rows:
            assert r["_profile_id"] is not None, f"{r['_source_id']} has no profile"
            members[r["_profile_id"]].add(r["_source_id"])
        profiles = {
            frozenset(members[p["_profile_id"]]): tuple(p[c] for c in COLUMNS)
            for p in wh.profiles()
        }
        assert len(profiles) == len(members), "a profile without identities, or one twice"
        return Landed(values, profiles, waiting)
    finally:
        wh.close()


def fresh_import(settings: Settings, where: Path, warehouse_url: str, sb: RunningSandbox) -> Landed:
    """A full import of `sb` by a new store into the warehouse at `warehouse_url`."""
    from headwater.services.warehouse import set_url

    fresh = App.open(dataclasses.replace(Settings.embedded(where), secret_key=settings.secret_key))
    try:
        set_url(fresh, warehouse_url)
        pipeline = make(fresh, sb)
        done = runner.run_pipeline(fresh, pipeline.id)
        assert done.status == "succeeded", done.message
        return landed(fresh, pipeline.id)
    finally:
        fresh.close()
