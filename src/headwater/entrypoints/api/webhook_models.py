"""Documents of the webhook routes (`routes/webhooks.py`); the same shapes as the CLI's
``connections webhook --json``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class WebhookRegister(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=2000,
        description="The public address Stripe reaches Headwater at "
        "(`https://headwater.example.com`); the receiver's path is added to it.",
    )


class WebhookSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: SecretStr = Field(
        max_length=200, description="The endpoint's signing secret (`whsec_…`)."
    )
    url: str | None = Field(
        default=None,
        max_length=2000,
        description="The public address the hand-made endpoint points at, to show it.",
    )


class WebhookPublic(BaseModel):
    connection_id: str = Field(description="The connection (`conn_…`).")
    configured: bool = Field(description="Whether a signing secret is stored.")
    path: str = Field(description="The receiver's path, below the public address.")
    url: str | None = Field(description="The full URL Stripe posts to, when known.")
    stripe_endpoint_id: str | None = Field(
        description="The endpoint at Stripe (`we_…`) when Headwater registered it."
    )
    secret: str | None = Field(description="The signing secret, masked.")
    enabled_events: list[str] = Field(description="The events the endpoint must send.")
    api_version: str = Field(description="The Stripe API version the endpoint must use.")
    created_at: str | None = Field(description="When the secret was stored (ISO 8601).")
    last_delivery_at: str | None = Field(
        description="When the last verified delivery arrived (ISO 8601), or null."
    )
    latest_delivery: str | None = Field(
        default=None,
        description="Whether the latest delivery was `accepted` or `refused` (a "
        "`warning` then says why and what to do); null before any.",
    )
    refused_deliveries: int | None = Field(
        default=None,
        description="Deliveries refused since the secret was stored (`created_at`): a bad "
        "or stale signature, a body that is not an event or over the size limit (413). "
        "Counted within about a second; null without a secret.",
    )
    last_refused_at: str | None = Field(
        default=None, description="When the latest refused delivery arrived (ISO 8601), or null."
    )
    last_refusal: str | None = Field(
        default=None,
        description="Why it was refused, in a few fixed words (`signature does not match "
        "the stored secret`, `timestamp outside tolerance`, `not an event`, `no "
        "Stripe-Signature header`, `malformed Stripe-Signature header`, `body over the size "
        "limit`), or null.",
    )
    stripe_status: str | None = Field(
        default=None,
        description="Shown (GET): Stripe's status of the endpoint Headwater registered: "
        "`enabled`, `disabled` (nothing is delivered), `deleted`, or `unknown` (Stripe "
        "could not be asked); null for one made by hand or none.",
    )
    warning: str | None = Field(
        default=None,
        description="What is left to do by hand after a change that went through "
        "(a previous endpoint Stripe could not delete, or one made by hand), or why "
        "nothing is delivered (the endpoint disabled or deleted at Stripe), or null.",
    )


class DeliveryReceived(BaseModel):
    received: bool = Field(description="Always true: the delivery was verified.")
    duplicate: bool = Field(description="An event id seen before: nothing was done.")
    event_id: str = Field(description="The Stripe event's id (`evt_…`).")
    runs_requested: int = Field(description="How many pipelines were asked to run.")
