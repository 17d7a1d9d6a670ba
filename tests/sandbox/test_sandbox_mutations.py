"""Create, update and delete through the SDK, and the events they emit."""

from __future__ import annotations

import httpx
import pytest
import stripe

DAY = 86400


def test_create_update_delete_and_their_events(fresh, sdk) -> None:
    client = sdk(fresh)
    created = client.v1.customers.create(
        {
            "email": "Ada@Example.com",
            "name": "Ada Lovelace",
            "metadata": {"plan": "pro", "team": "core"},
            "address": {"city": "London", "country": "GB"},
            "preferred_locales": ["en-GB", "fr"],
        }
    )
    assert created.id.startswith("cus_")
    assert created.address.city == "London"
    assert created.address.line1 is None
    assert created.preferred_locales == ["en-GB", "fr"]
    updated = client.v1.customers.update(
        created.id,
        {
            "metadata": {"plan": "enterprise", "team": ""},
            "address": {"city": "Paris"},
            "phone": "+33 1 23 45 67 89",
            "name": "",
        },
    )
    assert updated.metadata.to_dict() == {"plan": "enterprise"}
    assert updated.address.city == "Paris"
    assert updated.address.country == "GB"
    assert updated.name is None
    deleted = client.v1.customers.delete(created.id)
    assert deleted.deleted is True

    again = client.v1.customers.retrieve(created.id)
    assert again.to_dict() == {"id": created.id, "object": "customer", "deleted": True}
    listed = client.v1.customers.list().data
    assert created.id not in [c.id for c in listed]

    events = client.v1.events.list({"type": "customer.*"}).data
    assert [e.type for e in events] == ["customer.deleted", "customer.updated", "customer.created"]
    assert all(e.id.startswith("evt_") for e in events)
    update = events[1]
    previous = update.data.previous_attributes.to_dict()
    assert previous["metadata"] == {"plan": "pro", "team": "core"}
    assert previous["name"] == "Ada Lovelace"
    assert previous["phone"] is None
    assert previous["address"] == {"city": "London"}
    assert update.data.object.metadata.to_dict() == {"plan": "enterprise"}
    assert events[2].data.object.email == "Ada@Example.com"
    only_updates = client.v1.events.list({"types": ["customer.updated"]}).data
    assert [e.id for e in only_updates] == [update.id]


def test_no_op_update_emits_no_event(fresh, sdk) -> None:
    client = sdk(fresh)
    customer = client.v1.customers.create({"email": "same@example.com"})
    client.v1.customers.update(customer.id, {"email": "same@example.com"})
    assert len(client.v1.events.list().data) == 1


def test_generated_customers_emit_no_events(seeded, sdk) -> None:
    assert sdk(seeded).v1.events.list().data == []


def test_bad_create_parameters(fresh, sdk) -> None:
    client = sdk(fresh)
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.create({"colour": "red"})  # type: ignore[typeddict-unknown-key]
    assert unknown.value.param == "colour"
    with pytest.raises(stripe.InvalidRequestError) as email:
        client.v1.customers.create({"email": "not-an-email"})
    assert email.value.param == "email"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.customers.update("cus_doesnotexist00", {"name": "x"})
    assert missing.value.http_status == 404
    assert missing.value.code == "resource_missing"


def test_new_customers_are_newest_and_use_the_moved_clock(fresh, sdk) -> None:
    client = sdk(fresh)
    first = client.v1.customers.create({"name": "first"})
    now = fresh.advance_clock(10 * DAY)
    second = client.v1.customers.create({"name": "second"})
    assert second.created >= now >= first.created + 10 * DAY
    assert [c.id for c in client.v1.customers.list().data] == [second.id, first.id]


def test_events_age_out_after_30_days(fresh, sdk) -> None:
    client = sdk(fresh)
    old = client.v1.customers.create({"name": "old"})
    old_event = client.v1.events.list().data[0]
    fresh.advance_clock(29 * DAY)
    client.v1.customers.update(old.id, {"name": "older"})
    assert len(client.v1.events.list().data) == 2
    fresh.advance_clock(2 * DAY)
    events = client.v1.events.list().data
    assert [e.type for e in events] == ["customer.updated"]
    for cursor in ("starting_after", "ending_before"):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            client.v1.events.list({cursor: old_event.id})  # type: ignore[misc]
        assert caught.value.http_status == 400
        assert caught.value.code == "resource_missing"
        assert caught.value.param == cursor
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.retrieve(old_event.id)


def test_event_cursors_and_created_filter(fresh, sdk) -> None:
    client = sdk(fresh)
    ids = [client.v1.customers.create({"name": f"c{i}"}).id for i in range(7)]
    events = list(client.v1.events.list({"limit": 3}).auto_paging_iter())
    assert len(events) == 7
    assert [e.data.object.id for e in events] == ids[::-1]
    newer = client.v1.events.list({"ending_before": events[4].id, "limit": 2}).data
    assert [e.id for e in newer] == [events[2].id, events[3].id]
    # The creates can span seconds under load: bounds from the oldest and the newest.
    oldest, newest = events[-1].created, events[0].created
    assert len(client.v1.events.list({"created": {"gte": oldest}}).data) == 7
    assert client.v1.events.list({"created": {"gt": newest}}).data == []
    inside = client.v1.events.list({"created": {"gte": newest}}).data
    assert inside
    assert all(e.created == newest for e in inside)


def test_idempotency_key_replays_the_first_answer(fresh, sdk) -> None:
    headers = {"Authorization": f"Bearer {fresh.secret_key}", "Idempotency-Key": "k-1"}
    one = httpx.post(f"{fresh.url}/v1/customers", data={"name": "x"}, headers=headers)
    two = httpx.post(f"{fresh.url}/v1/customers", data={"name": "x"}, headers=headers)
    assert one.json()["id"] == two.json()["id"]
    assert fresh.stats()["customers"] == 1
    assert "idempotent-replayed" not in one.headers
    assert two.headers["idempotent-replayed"] == "true"
    assert two.headers["original-request"] == one.headers["request-id"]
    client = sdk(fresh)
    first = client.v1.customers.create({"name": "y"}, {"idempotency_key": "k-2"})
    again = client.v1.customers.create({"name": "y"}, {"idempotency_key": "k-2"})
    assert again.id == first.id
    assert again.last_response.headers["idempotent-replayed"] == "true"
    assert again.last_response.idempotency_key == "k-2"
    # The same key with other parameters, or on another endpoint, is refused.
    with pytest.raises(stripe.IdempotencyError) as other_parameters:
        client.v1.customers.create({"name": "z"}, {"idempotency_key": "k-2"})
    assert other_parameters.value.http_status == 400
    assert "same parameters they were first used with" in str(other_parameters.value)
    assert "k-2" in str(other_parameters.value)
    with pytest.raises(stripe.IdempotencyError) as other_endpoint:
        client.v1.customers.update(first.id, {"name": "y"}, {"idempotency_key": "k-2"})
    assert "same endpoint" in str(other_endpoint.value)
    assert client.v1.customers.retrieve(first.id).name == "y"
    assert fresh.stats()["customers"] == 2
    # Keys are kept for 24 hours of the sandbox's clock, then a key is new again.
    fresh.advance_clock(DAY + 1)
    later = client.v1.customers.create({"name": "z"}, {"idempotency_key": "k-2"})
    assert later.id != first.id
    assert "idempotent-replayed" not in later.last_response.headers
    assert fresh.stats()["customers"] == 3


def test_restricted_key_with_custom_permissions(sdk) -> None:
    from headwater.sandbox.testing import start_sandbox

    with start_sandbox(keys={"rk_test_reader": "customers:read,events:read"}) as sandbox:
        client = sdk(sandbox, "rk_test_reader")
        assert client.v1.events.list().data == []
        with pytest.raises(stripe.PermissionError) as caught:
            client.v1.customers.create({"name": "x"})
        assert "rak_customer_write" in str(caught.value.user_message)
