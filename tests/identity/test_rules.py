"""Each rule of DESIGN §10 on small, named cases (every step is also fully checked
against the reference by `World.run`)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from tests.identity.world import T0, World, identity, settings_for

from headwater.services.identity import ChangeKind, IdentityKey, neighbourhood, rebuild
from headwater.services.identity.ids import new_profile_id
from headwater.services.identity.links import link_rank
from headwater.services.identity.normalise import identifier_keys


def groups(world: World) -> set[frozenset[str]]:
    """The profiles as sets of "pipeline/source" names."""
    return {
        frozenset(f"{k.pipeline_id}/{k.source_id}" for k in members)
        for members in world.profiles().values()
    }


def test_case_and_whitespace_variants_are_one_customer() -> None:
    world = World(settings_for("email"))
    world.run(
        puts=[
            identity("pl_1", "cus_1", "ann@shop.io"),
            identity("pl_2", "cus_2", "  ANN@shop.io "),
            identity("pl_3", "cus_1", "Ann@Shop.IO\t"),
            identity("pl_3", "cus_9", "bob@shop.io"),
        ]
    )
    assert groups(world) == {
        frozenset({"pl_1/cus_1", "pl_2/cus_2", "pl_3/cus_1"}),
        frozenset({"pl_3/cus_9"}),
    }


def test_phone_only_identities_link_by_phone_and_to_an_email_identity() -> None:
    world = World(settings_for("email", "phone"))
    world.run(
        puts=[
            identity("pl_1", "cus_1", None, "+1 555 0100"),
            identity("pl_3", "cus_2", "", " +1 555 0100"),
            identity("pl_3", "cus_3", "ann@shop.io", "+1 555 0100"),
            identity("pl_3", "cus_4", None, "+44 20 7946"),
        ]
    )
    assert groups(world) == {
        frozenset({"pl_1/cus_1", "pl_3/cus_2", "pl_3/cus_3"}),
        frozenset({"pl_3/cus_4"}),
    }


def test_different_emails_are_not_linked_by_a_shared_phone() -> None:
    """The first identifier both have decides; lower ones are not consulted."""
    settings = settings_for("email", "phone")
    a = identity("pl_1", "cus_1", "ann@shop.io", "+1 555 0100")
    b = identity("pl_3", "cus_2", "bob@shop.io", "+1 555 0100")
    c = identity("pl_3", "cus_3", None, "+1 555 0100")
    keys = {x.key: identifier_keys(x.values, settings) for x in (a, b, c)}
    assert link_rank(a, keys[a.key], b, keys[b.key]) is None
    assert link_rank(a, keys[a.key], c, keys[c.key]) == 2
    world = World(settings)
    world.run(puts=[a, b])
    assert groups(world) == {frozenset({"pl_1/cus_1"}), frozenset({"pl_3/cus_2"})}


@pytest.mark.parametrize(
    ("ann", "bob", "joins"),
    [
        # The phone-only identity links to both; the link with the smaller pair of keys
        # comes first and is used; the other would put two emails in one profile.
        ("cus_1", "cus_3", "ann"),
        ("cus_3", "cus_1", "bob"),
    ],
)
def test_guard_skips_the_later_link_deterministically(ann: str, bob: str, joins: str) -> None:
    world = World(settings_for("email", "phone"))
    world.run(
        puts=[
            identity("pl_3", ann, "ann@shop.io", "+1 555 0100"),
            identity("pl_3", "cus_2", None, "+1 555 0100"),
            identity("pl_3", bob, "bob@shop.io", "+1 555 0100"),
        ]
    )
    winner = ann if joins == "ann" else bob
    loser = bob if joins == "ann" else ann
    assert groups(world) == {
        frozenset({f"pl_3/{winner}", "pl_3/cus_2"}),
        frozenset({f"pl_3/{loser}"}),
    }


def test_guard_order_is_by_rank_first() -> None:
    """A same-source link (rank 0) is taken before any phone link."""
    world = World(settings_for("email", "phone"))
    world.run(
        puts=[
            identity("pl_1", "cus_1", "ann@shop.io", "+1 555 0100"),
            identity("pl_2", "cus_5", "bob@shop.io", None),
            identity("pl_1", "cus_5", None, "+1 555 0100"),  # same source as pl_2/cus_5
        ]
    )
    assert groups(world) == {
        frozenset({"pl_2/cus_5", "pl_1/cus_5"}),
        frozenset({"pl_1/cus_1"}),
    }


@pytest.mark.parametrize("placeholder", ["test@example.com", "noreply@shop.io", "N/A", " none "])
def test_blocked_placeholders_never_link(placeholder: str) -> None:
    world = World(settings_for("email", "phone"))
    world.run(
        puts=[
            identity("pl_1", "cus_1", placeholder, None),
            identity("pl_3", "cus_2", placeholder, None),
            # A blocked email counts as no email: the phone decides.
            identity("pl_3", "cus_3", placeholder, "+1 555 0100"),
            identity("pl_3", "cus_4", "ann@shop.io", "+1 555 0100"),
        ]
    )
    assert groups(world) == {
        frozenset({"pl_1/cus_1"}),
        frozenset({"pl_3/cus_2"}),
        frozenset({"pl_3/cus_3", "pl_3/cus_4"}),
    }
    # The identity keeps its value: blocking only affects linking.
    assert world.store.rows[IdentityKey("pl_1", "cus_1")].values["email"] == placeholder


def test_same_source_id_across_two_pipelines() -> None:
    world = World(settings_for("email"))
    world.run(
        puts=[
            # One Stripe customer read by two pipelines of one connection: linked even
            # when one mapping leaves the email out...
            identity("pl_1", "cus_1", "ann@shop.io"),
            identity("pl_2", "cus_1", None),
            # ...but not when the two mappings give different emails (the guard).
            identity("pl_1", "cus_2", "bob@shop.io"),
            identity("pl_2", "cus_2", "robert@shop.io"),
            # The same id in another account is another customer.
            identity("pl_3", "cus_1", None),
        ]
    )
    assert groups(world) == {
        frozenset({"pl_1/cus_1", "pl_2/cus_1"}),
        frozenset({"pl_1/cus_2"}),
        frozenset({"pl_2/cus_2"}),
        frozenset({"pl_3/cus_1"}),
    }


def test_integer_identifier() -> None:
    world = World(settings_for("customer_no", "email"))
    world.run(
        puts=[
            identity("pl_1", "cus_1", "ann@shop.io", customer_no=7),
            identity("pl_3", "cus_2", "other@shop.io", customer_no=7),  # number decides
            identity("pl_3", "cus_3", "x@shop.io", customer_no=0),  # 0 is a placeholder
            identity("pl_3", "cus_4", "x@shop.io", customer_no=None),
        ]
    )
    assert groups(world) == {
        frozenset({"pl_1/cus_1", "pl_3/cus_2"}),
        frozenset({"pl_3/cus_3", "pl_3/cus_4"}),
    }


def test_values_latest_non_null_by_source_time_then_pipeline_order() -> None:
    world = World(settings_for("email"))
    world.run(
        puts=[
            identity("pl_3", "cus_1", "ann@shop.io", "+1 1", at=50, name=None),
            identity("pl_2", "cus_7", "ANN@shop.io", "+1 2", at=10, name="Ann B"),
            identity("pl_1", "cus_8", "ann@shop.io ", "+1 3", at=10, name="Ann A"),
            identity("pl_1", "cus_9", "ann@shop.io", "+1 4", at=None, customer_no=5),
        ]
    )
    (profile_id,) = world.profiles()
    values = world.store.profile_rows[profile_id].values
    assert values["email"] == "ann@shop.io"  # the newest (at=50)
    assert values["phone"] == "+1 1"
    assert values["name"] == "Ann A"  # newest non-null: a tie at 10, pl_1 before pl_2
    assert values["customer_no"] == 5  # only the undated identity has one
    assert world.store.profile_rows[profile_id].identity_count == 4


def test_ids_grow_merge_and_split_by_the_rules() -> None:
    world = World(settings_for("email", "phone"))
    world.run(puts=[identity("pl_1", "cus_1", "ann@shop.io")])
    ann = world.profile_of("pl_1", "cus_1")
    world.run(
        puts=[identity("pl_3", "cus_1", "Ann@shop.io"), identity("pl_1", "cus_2", "bob@x.io")]
    )
    assert world.profile_of("pl_3", "cus_1") == ann  # growing keeps its id
    bob = world.profile_of("pl_1", "cus_2")
    assert bob != ann
    assert world.store.changes == []  # growth is not a merge
    # Bob's identity changes its email to Ann's: a merge; the larger (Ann, 2) survives.
    world.run(puts=[identity("pl_1", "cus_2", "ann@shop.io", at=5)])
    assert world.profile_of("pl_1", "cus_2") == ann
    assert bob not in world.store.profile_rows
    merge = world.store.changes[-1]
    assert (merge.kind, merge.before, merge.after) == (
        ChangeKind.MERGE,
        tuple(sorted((ann, bob))),
        (ann,),
    )
    assert merge.run_id == "run_3"
    # One of three leaves: a split; the part with most of the old identities keeps it.
    world.run(puts=[identity("pl_3", "cus_1", "carl@shop.io", at=6)])
    carl = world.profile_of("pl_3", "cus_1")
    assert world.profile_of("pl_1", "cus_1") == ann
    assert carl != ann
    split = world.store.changes[-1]
    assert (split.kind, split.before, split.after) == (
        ChangeKind.SPLIT,
        (ann,),
        tuple(sorted((ann, carl))),
    )
    assert split.at == T0 + timedelta(hours=4)


def test_merge_tie_keeps_the_smaller_id_and_a_split_tie_the_smaller_key() -> None:
    world = World(settings_for("email", "phone"))
    world.run(
        puts=[identity("pl_1", "cus_1", "ann@shop.io"), identity("pl_3", "cus_2", "bob@x.io")]
    )
    a, b = world.profile_of("pl_1", "cus_1"), world.profile_of("pl_3", "cus_2")
    # Two profiles of one identity each merge: the smaller id survives.
    world.run(puts=[identity("pl_3", "cus_2", "ann@shop.io", at=1)])
    assert world.profile_of("pl_3", "cus_2") == min(a, b)
    kept = min(a, b)
    world.run(puts=[identity("pl_3", "cus_2", "bob@x.io", at=2)])
    # 1 vs 1: the part holding the smaller identity key (pl_1/cus_1) keeps the id.
    assert world.profile_of("pl_1", "cus_1") == kept
    assert world.profile_of("pl_3", "cus_2") != kept


def test_deleting_every_identity_removes_the_profile() -> None:
    world = World(settings_for("email"))
    world.run(
        puts=[identity("pl_1", "cus_1", "ann@shop.io"), identity("pl_3", "cus_1", "ann@shop.io")]
    )
    (profile_id,) = world.profiles()
    world.run(deletes=[IdentityKey("pl_1", "cus_1")])
    assert world.store.profile_rows[profile_id].identity_count == 1
    world.run(deletes=[IdentityKey("pl_3", "cus_1")])
    assert world.store.profile_rows == {}


def test_the_neighbourhood_is_the_affected_components_only() -> None:
    world = World(settings_for("email", "phone"))
    world.run(puts=[identity("pl_1", f"cus_{n}", f"c{n}@shop.io", f"+1 {n}") for n in range(500)])
    world.run(puts=[identity("pl_3", "cus_1", None, "+1 7")])
    settings = world.settings
    touched = {IdentityKey("pl_3", "cus_2")}
    world.store.put(identity("pl_3", "cus_2", "C7@shop.io", "+1 8"))
    found = {i.key for i in neighbourhood(world.store, settings, touched)}
    # Its email links it to pl_1/cus_7, whose phone links pl_3/cus_1; the phone +1 8 is
    # shared with pl_1/cus_8 but both have an email (different): not linked, not fetched.
    assert found == {
        IdentityKey("pl_3", "cus_2"),
        IdentityKey("pl_1", "cus_7"),
        IdentityKey("pl_3", "cus_1"),
    }


def test_changing_the_identifiers_then_rebuilding() -> None:
    world = World(settings_for("email"))
    rows = [
        identity("pl_1", "cus_1", None, "+1 555"),
        identity("pl_3", "cus_2", None, "+1 555 "),
        identity("pl_3", "cus_3", "ann@shop.io", "+1 555"),
    ]
    world.run(puts=rows)
    assert len(world.profiles()) == 3
    wider = World(settings_for("email", "phone"))
    for row in world.store.rows.values():  # with the memberships the old settings made
        assert row.profile_id is not None
        wider.store.load(row, world.store.profile_rows[row.profile_id])
    wider.store.apply(rebuild(wider.store, wider.settings, wider.context()))
    assert len(wider.profiles()) == 1
    assert len(wider.store.profile_rows) == 1
    (merge,) = wider.store.changes
    assert merge.kind is ChangeKind.MERGE
    assert len(merge.before) == 3


def test_new_ids_are_uuid3_layouts_of_the_run_and_the_smallest_key() -> None:
    x = identity("pl_1", "cus_1", "ann@shop.io")
    digest = hashlib.md5(b"headwater-profile\x1frun_9\x1fpl_1\x1fcus_1").hexdigest()
    made = uuid.UUID(new_profile_id("run_9", x))
    assert (made.version, made.variant) == (3, uuid.RFC_4122)
    assert made.hex[:12] == digest[:12]
    assert made.hex[13:16] == digest[13:16]
    assert made.hex[17:] == digest[17:]
    assert str(made) == new_profile_id("run_9", x)
    assert new_profile_id("run_10", x) != str(made)


def test_a_phone_shared_by_many_emails_links_only_the_phone_only_identities() -> None:
    world = World(settings_for("email", "phone"))
    switchboard = "+1 800 0000"
    world.run(
        puts=[identity("pl_3", f"cus_{n:03d}", f"u{n}@shop.io", switchboard) for n in range(300)]
        + [identity("pl_1", "cus_a", None, switchboard), identity("pl_2", "cus_b", "", switchboard)]
    )
    profiles = groups(world)
    assert len(profiles) == 300
    # The phone-only identities join the identity with the smallest key among those
    # they link to (pl_1/cus_a < pl_2/cus_b < pl_3/...): the first link in the order.
    assert frozenset({"pl_1/cus_a", "pl_2/cus_b", "pl_3/cus_000"}) in profiles
