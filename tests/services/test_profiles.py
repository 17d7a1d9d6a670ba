"""End to end: sandbox customers → two pipelines → unified profiles (issue 14).

Every run resolves the identities it touched once its writes committed; a rebuild
afterwards must change nothing; every profile follows DESIGN §10 on both engines.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from tests.services.conftest import MakePipeline, connect

from headwater.kernel.errors import InvalidInput, NotFound
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import model, profiles
from headwater.services.app import App
from headwater.services.identity.keys import key_spec
from headwater.services.pipelines import runner

MAPPING = {"email": "email", "first_name": "name", "phone": "phone"}


@pytest.fixture
def empty_sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=0, seed=3) as running:
        yield running


def _client(sb: RunningSandbox) -> stripe.StripeClient:
    return stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})


def _run(app: App, *pipeline_ids: str) -> None:
    for pipeline_id in pipeline_ids:
        run = runner.run_pipeline(app, pipeline_id, full=True)
        assert run.status == "succeeded", run.message


def _partition(app: App) -> set[frozenset[str]]:
    """Profiles as sets of '<pipeline name>:<customer email or id>'."""
    out = set()
    for p in profiles.list_profiles(app):
        doc = profiles.show_profile(app, p["id"])
        out.add(frozenset(f"{i['pipeline']}:{i['source_id']}" for i in doc["identities"]))
    return out


def test_profiles_unify_customers_across_pipelines_and_email_variants(
    warehouse_app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    app = warehouse_app
    client = _client(empty_sandbox)
    ann = client.v1.customers.create({"email": "ann@example.com", "name": "Ann"}).id
    ann2 = client.v1.customers.create({"email": "  ANN@Example.COM ", "name": "Ann B"}).id
    bob = client.v1.customers.create({"email": "bob@example.com", "name": "Bob"}).id
    carol = client.v1.customers.create({"email": "carol@example.com", "name": "Carol"}).id
    conn = connect(app, empty_sandbox)
    one = make_pipeline(conn, MAPPING, name="one")
    two = make_pipeline(conn, MAPPING, name="two")
    _run(app, one.id, two.id)  # each run resolves what it wrote

    expected = {
        frozenset({f"one:{ann}", f"two:{ann}", f"one:{ann2}", f"two:{ann2}"}),
        frozenset({f"one:{bob}", f"two:{bob}"}),
        frozenset({f"one:{carol}", f"two:{carol}"}),
    }
    assert _partition(app) == expected
    _rebuild_changes_nothing(app, considered=8)
    [bob_profile] = profiles.list_profiles(app, search="BOB@")
    assert bob_profile["identity_count"] == 2
    assert bob_profile["values"]["email"] == "bob@example.com"

    # Bob takes Carol's email: their profiles merge; then Bob leaves again: a split.
    client.v1.customers.update(bob, {"email": "Carol@example.com"})
    _run(app, one.id, two.id)
    together = frozenset({f"one:{bob}", f"two:{bob}", f"one:{carol}", f"two:{carol}"})
    assert together in _partition(app)
    _rebuild_changes_nothing(app, considered=8)
    [survivor] = [p["id"] for p in profiles.list_profiles(app, search="carol@")]
    assert "merge" in [c["kind"] for c in profiles.show_profile(app, survivor)["changes"]]
    client.v1.customers.update(bob, {"email": "bob@example.com"})
    _run(app, one.id, two.id)
    assert _partition(app) == expected
    _rebuild_changes_nothing(app, considered=8)
    history = profiles.show_profile(app, survivor)["changes"]
    assert history[-1]["kind"] == "split"
    assert survivor in history[-1]["before"]
    assert profiles.show_profile(app, survivor)["identity_count"] == 2

    # A deleted customer leaves its profile at the run's end.
    client.v1.customers.delete(ann2)
    _run(app, one.id, two.id)
    [ann_profile] = profiles.list_profiles(app, search="ann@")
    assert ann_profile["identity_count"] == 2
    _rebuild_changes_nothing(app, considered=6)


def _rebuild_changes_nothing(app: App, considered: int) -> None:
    """Incremental resolution after each run and a full rebuild agree."""
    again = profiles.rebuild_profiles(app)
    assert again.considered == considered
    assert (again.written, again.removed, again.moved) == (0, 0, 0)
    assert (again.merges, again.splits) == ([], [])


def test_conflicting_emails_stay_apart_and_settings_are_stored(
    warehouse_app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline, tmp_path: Path
) -> None:
    app = warehouse_app
    client = _client(empty_sandbox)
    a = client.v1.customers.create({"email": "a@example.com", "phone": "+1 555 0100"}).id
    b = client.v1.customers.create({"email": "b@example.com", "phone": "+1 555 0100"}).id
    c = client.v1.customers.create({"email": "noreply@shop.io", "name": "x"}).id
    d = client.v1.customers.create({"email": "NOREPLY@shop.io", "name": "y"}).id
    pipeline = make_pipeline(connect(app, empty_sandbox), MAPPING, name="one")
    _run(app, pipeline.id)
    assert profiles.current_settings(app).names == ("email",)
    profiles.set_settings(app, ["email", "phone"], None)  # rebuilds: no separate step
    assert profiles.current_settings(app).names == ("email", "phone")
    # Different emails never link by a lower identifier; blocked emails never link.
    assert _partition(app) == {frozenset({f"one:{x}"}) for x in (a, b, c, d)}
    blocked = tmp_path / "blocked.json"
    blocked.write_text(json.dumps({"email": ["a@example.com"]}))
    data = profiles.blocked_from_text(blocked.read_text(), str(blocked))
    profiles.set_settings(app, ["email"], data)
    # noreply@ is no longer blocked (the given list replaces the defaults).
    assert frozenset({f"one:{c}", f"one:{d}"}) in _partition(app)
    with pytest.raises(InvalidInput, match="identifiers"):
        profiles.set_settings(app, ["nope"], None)
    with pytest.raises(InvalidInput, match="JSON"):
        profiles.blocked_from_text("[1", "blocked.json")
    with pytest.raises(NotFound):
        profiles.show_profile(app, "00000000-0000-0000-0000-000000000000")


def test_identifiers_follow_a_renamed_property_and_hold_back_its_drop(
    warehouse_app: App, empty_sandbox: RunningSandbox, make_pipeline: MakePipeline
) -> None:
    """Renaming the property an identifier names left the settings naming nothing:
    every resolution after a run failed (kept in the run's summary only), and
    `identity show` and `profiles rebuild` failed too."""
    app = warehouse_app
    client = _client(empty_sandbox)
    a = client.v1.customers.create({"email": "a@example.com"}).id
    b = client.v1.customers.create({"email": " A@Example.com "}).id
    _run(app, make_pipeline(connect(app, empty_sandbox), MAPPING, name="one").id)
    model.rename(app, "email", "mail")
    settings = profiles.current_settings(app)
    assert settings.names == ("mail",)
    assert "noreply@*" in settings.identifiers[0].blocked  # the defaults it had
    profiles.rebuild_profiles(app)
    assert _partition(app) == {frozenset({f"one:{a}", f"one:{b}"})}
    given = profiles.set_settings(app, ["mail", "phone"], {"phone": ["000"]})
    model.rename(app, "mail", "email")  # keeps the values blocked for it (no defaults anew)
    assert profiles.current_settings(app).as_dict() == {
        "identifiers": ["email", "phone"],
        "blocked": {"email": list(given.identifiers[0].blocked), "phone": ["000"]},
    }
    with pytest.raises(InvalidInput, match="identifiers first") as refused:
        model.drop(app, "phone")
    assert refused.value.problems[0].location == "phone"
    assert app.model().find("phone") is not None
    model.drop(app, "address")  # no identifier (nor mapping) sets it: dropped
    assert app.model().find("address") is None


def test_two_stripe_accounts_unify_by_email_variants_and_phone(
    warehouse_app: App, make_pipeline: MakePipeline
) -> None:
    """Two sandboxes (two connections) with overlapping customers; two pipelines read
    the first: case and whitespace variants of one email, phone-only customers of both
    accounts, and two different emails sharing a phone (never one profile)."""
    app = warehouse_app
    profiles.set_settings(app, ["email", "phone"], None)
    with (
        start_sandbox(customers=0, seed=21) as first,
        start_sandbox(customers=0, seed=22) as second,
    ):
        a, b = _client(first), _client(second)
        ann_a = a.v1.customers.create({"email": "ann@example.com", "name": "Ann"}).id
        ann_b = b.v1.customers.create({"email": " ANN@Example.com\t", "name": "Ann B"}).id
        bob_a = a.v1.customers.create({"phone": "+1 555 0100", "name": "Bob"}).id
        bob_b = b.v1.customers.create({"phone": "+1 555 0100 ", "name": "Robert"}).id
        dan = a.v1.customers.create({"email": "dan@example.com", "phone": "+1 555 0199"}).id
        eve = b.v1.customers.create({"email": "eve@example.com", "phone": "+1 555 0199"}).id
        anon = b.v1.customers.create({"phone": "+1 555 0199", "name": "?"}).id
        conn_a, conn_b = connect(app, first), connect(app, second)
        one = make_pipeline(conn_a, MAPPING, name="one")
        two = make_pipeline(conn_a, MAPPING, name="two")
        three = make_pipeline(conn_b, MAPPING, name="three")
        _run(app, one.id, two.id, three.id)
    found = _partition(app)
    assert frozenset({f"one:{ann_a}", f"two:{ann_a}", f"three:{ann_b}"}) in found
    assert frozenset({f"one:{bob_a}", f"two:{bob_a}", f"three:{bob_b}"}) in found
    [with_dan] = [p for p in found if f"one:{dan}" in p]
    [with_eve] = [p for p in found if f"three:{eve}" in p]
    assert with_dan != with_eve  # two emails never share a profile, whatever the phone
    assert f"two:{dan}" in with_dan
    assert (f"three:{anon}" in with_dan) != (f"three:{anon}" in with_eve)  # exactly one
    assert len(found) == 4
    _rebuild_changes_nothing(app, considered=10)
    [ann] = profiles.list_profiles(app, search="ann@example")
    assert ann["identity_count"] == 3
    # Its name is the latest full read's: each is stamped with Stripe's time to the
    # second (the `Date` of its first answer), and reads in one second tie, which
    # pipeline order breaks (one, two, three).
    stamps = {
        i["pipeline"]: i["source_updated_at"]
        for i in profiles.show_profile(app, ann["id"])["identities"]
    }
    assert stamps["one"] <= stamps["two"] <= stamps["three"]
    latest = "Ann B" if stamps["three"] > stamps["two"] else "Ann"
    assert ann["values"]["first_name"] == latest


def test_a_resolution_waiting_for_the_lock_takes_the_settings_saved_meanwhile(
    warehouse_app: App,
    empty_sandbox: RunningSandbox,
    make_pipeline: MakePipeline,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run's resolution read the settings before it took the resolution lock: with
    `identity set` saving and rebuilding meanwhile, it then rebuilt everything under
    the settings just replaced (stored: email, phone; profiles and keys: email)."""
    app = warehouse_app
    client = _client(empty_sandbox)
    client.v1.customers.create({"email": "a@example.com", "phone": "+1 555 0100"})
    pipeline = make_pipeline(connect(app, empty_sandbox), MAPPING, name="one")
    _run(app, pipeline.id)
    read, release = threading.Event(), threading.Event()
    original = profiles.current_settings

    def paused(app: App) -> Any:
        found = original(app)
        if threading.current_thread().name == "resolution":
            read.set()
            assert release.wait(30)
        return found

    monkeypatch.setattr(profiles, "current_settings", paused)
    warehouse = app.warehouse()
    resolution = threading.Thread(
        target=lambda: profiles.resolve_pending(app, warehouse), name="resolution"
    )
    change = threading.Thread(target=lambda: profiles.set_settings(app, ["email", "phone"], None))
    try:
        resolution.start()
        assert read.wait(30)
        change.start()
        time.sleep(1)  # the change saves, then rebuilds (or waits for the lock)
        release.set()
        resolution.join(30)
        change.join(30)
    finally:
        release.set()
        warehouse.close()
    saved = original(app)
    assert saved.names == ("email", "phone")
    warehouse = app.warehouse()
    try:
        assert warehouse.identity_keys_fingerprint() == key_spec(saved).fingerprint
    finally:
        warehouse.close()


@pytest.mark.parametrize("text", ["ann\udcff", "\ud83d\ude00"], ids=["escaped byte", "pair"])
def test_a_search_or_id_that_is_no_unicode_text_is_bad_input(warehouse_app: App, text: str) -> None:
    """Half a character (a lone surrogate: the CLI's arguments carry undecodable bytes as
    such, ``\\udcff``) cannot be sent to a warehouse: a search, a cursor or a profile id
    holding one failed as a DuckDB read error or, on PostgreSQL, with the encoder's
    UnicodeEncodeError (a traceback); and a cursor holding NUL was a refused value there.
    The search is refused naming it, and such a cursor or id names no profile."""
    app = warehouse_app
    for call in (
        lambda: profiles.list_profiles(app, text),
        lambda: profiles.count_profiles(app, text),
    ):
        with pytest.raises(InvalidInput) as refused:
            call()
        assert refused.value.location == "search"
        assert "surrogate" in refused.value.message
    for cursor in (text, "p\x00"):
        with pytest.raises(InvalidInput) as refused:
            profiles.list_profiles(app, after=cursor)
        assert refused.value.location == "starting_after"
        assert "no profile with id" in refused.value.message
    with pytest.raises(NotFound, match="no profile"):
        profiles.show_profile(app, text)
