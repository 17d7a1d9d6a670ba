"""Connection documents (`Connection.public`: the key only masked)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from headwater.entrypoints.api.schemas import Body, Patch
from headwater.services.connections import (
    MAX_REQUESTS_PER_SECOND,
    MIN_REQUESTS_PER_SECOND,
    STRIPE_API,
)

ApiKey = Field(
    min_length=1,
    max_length=500,
    description="A Stripe secret or restricted key (`sk_live_…`, `sk_test_…`, `rk_live_…`, "
    "`rk_test_…`). It is verified with Stripe before it is saved, stored encrypted and "
    "never shown again except masked. A restricted key needs Customers: Read; "
    "Events: Read lets incremental runs see updates and deletions.",
)


class ConnectionCreate(Body):
    kind: Literal["stripe"] = Field(description="The source: `stripe` (the only one today).")
    name: str = Field(min_length=1, max_length=200, description="A name for the connection.")
    api_key: SecretStr = ApiKey
    base_url: str = Field(
        default=STRIPE_API,
        min_length=1,
        max_length=2000,
        description="The Stripe API's base URL (another one for a proxy or the sandbox).",
    )
    requests_per_second: float = Field(
        default=20.0,
        ge=MIN_REQUESTS_PER_SECOND,
        le=MAX_REQUESTS_PER_SECOND,
        description="The request budget runs keep to: Stripe's rate limit is shared with "
        "the account's own traffic.",
    )


class ConnectionUpdate(Patch):
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="A new name; absent keeps it."
    )
    base_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        description="A new Stripe API base URL, given with `api_key` (verified there "
        "before both are kept: the saved key is never sent to a new URL); absent keeps it.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        description="The API key, required with a new `base_url` (and replacing the "
        "saved one); refused without one (replace a key with `rotate-key`).",
    )
    requests_per_second: float | None = Field(
        default=None,
        ge=MIN_REQUESTS_PER_SECOND,
        le=MAX_REQUESTS_PER_SECOND,
        description="A new request budget, from the next request on; absent keeps it.",
    )


class KeyRotation(Body):
    api_key: SecretStr = ApiKey


class Permissions(BaseModel):
    customers_read: bool = Field(description="The key may read customers (always true).")
    events_read: bool = Field(
        description="The key may read events: without it incremental runs do not see "
        "updates or deletions."
    )


class ConnectionPublic(BaseModel):
    id: str = Field(description="The connection's id (`conn_…`).")
    name: str = Field(description="The connection's name.")
    kind: str = Field(description="The source: `stripe`.")
    base_url: str = Field(description="The Stripe API's base URL.")
    requests_per_second: float = Field(description="The request budget runs keep to.")
    api_key: str = Field(description="The key, masked (`sk_test_…9f2c`).")
    livemode: bool = Field(description="Whether the key reads live data (not test mode).")
    account_id: str | None = Field(
        description="The Stripe account (`acct_…`) the key belongs to; null when Stripe did "
        "not say. A new key (rotate-key, or a new base URL with its key) must be of this "
        "account and mode: another is refused at `api_key` (add a connection for it)."
    )
    permissions: Permissions = Field(description="What the key was found to be allowed to read.")
    created_at: str = Field(description="When the connection was added (ISO 8601, UTC).")


class ConnectionList(BaseModel):
    data: list[ConnectionPublic] = Field(description="Connections, newest first.")
    has_more: bool = Field(description="Whether more connections follow this page.")


class Deleted(BaseModel):
    id: str = Field(description="The id of what was deleted.")
    deleted: Literal[True] = Field(description="Always true: it is gone.")
    warning: str | None = Field(
        default=None,
        description="What is left to remove by hand: the connection's webhook endpoint at "
        "Stripe, when Stripe did not delete it (or it was made by hand).",
    )
