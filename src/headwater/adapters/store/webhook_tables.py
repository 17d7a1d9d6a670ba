"""Metadata store tables for Stripe webhooks (migration 0008_webhooks), on the shared
`tables.metadata`.

- `webhook_endpoints`: one per connection at most: the Stripe endpoint's id (None for
  an endpoint made by hand), its URL, the signing secret (AES-GCM, bound to the
  connection id) with its masked form, when the last verified delivery arrived, and
  the deliveries refused since the secret was stored (0017: how many, the latest one's
  time and short reason; added up by `webhooks.add_refusals`, at most once a second).
- `webhook_events`: event ids already accepted per connection, so that a retried or
  replayed delivery triggers nothing twice; rows older than Stripe's retry horizon are
  pruned.
- `webhook_followups`: per pipeline, a requested incremental run not yet done
  (coalescing: many deliveries, one row, one run), and the run claimed since the
  latest request, which covers it.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
)

from headwater.adapters.store.tables import metadata

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column(
        "connection_id",
        String(40),
        ForeignKey("connections.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("workspace_id", String(40), ForeignKey("workspaces.id"), nullable=False),
    Column("stripe_endpoint_id", String(80), nullable=True),
    Column("url", Text, nullable=True),
    Column("secret_encrypted", Text, nullable=False),
    Column("secret_masked", String(60), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_delivery_at", DateTime(timezone=True), nullable=True),
    Column("refused_count", Integer, nullable=False, server_default="0"),
    Column("last_refused_at", DateTime(timezone=True), nullable=True),
    Column("last_refusal", String(80), nullable=True),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column(
        "connection_id",
        String(40),
        ForeignKey("connections.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("event_id", String(255), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_webhook_events_received", "received_at"),
)

webhook_followups = Table(
    "webhook_followups",
    metadata,
    Column(
        "pipeline_id",
        String(40),
        ForeignKey("pipelines.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("workspace_id", String(40), ForeignKey("workspaces.id"), nullable=False),
    Column("first_at", DateTime(timezone=True), nullable=False),
    # The latest request: a run that started after it covers every request of the row.
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    # The run that was claimed after the latest request (0011): it reads every change
    # asked about; None until one is, and again after each new request.
    Column("covered_by", String(40), nullable=True),
    # Its run was enqueued; it only waits to see whether that run settled (0012).
    Column("settling", Boolean, nullable=False, server_default=false()),
    Index("ix_webhook_followups_due", "due_at"),
)
