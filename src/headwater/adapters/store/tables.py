"""Metadata store tables (SQLAlchemy Core).  Schema changes go through migrations."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

LIVE_STATUSES = ("queued", "running")  # the partial index below needs plain strings

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),  # unique among a user's (0010)
    Column("customer_model", JSON, nullable=False),
    Column("warehouse_url_encrypted", Text, nullable=True),  # a secret: it may hold a password
    Column("identity_settings", JSON, nullable=True),  # None: the default identifiers
    Column("created_at", DateTime(timezone=True), nullable=False),
)

connections = Table(
    "connections",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("workspace_id", String(40), ForeignKey("workspaces.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("base_url", Text, nullable=False),
    Column("requests_per_second", Float, nullable=False),
    Column("api_key_encrypted", Text, nullable=False),
    Column("api_key_masked", String(60), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("events_read", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("account_id", String(255), nullable=True),
)

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("workspace_id", String(40), ForeignKey("workspaces.id"), nullable=False),
    Column("connection_id", String(40), ForeignKey("connections.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("enabled", Boolean, nullable=False),
    Column("schedule", String(10), nullable=False),
    Column("incremental", Boolean, nullable=False),
    Column("filter", JSON, nullable=True),
    Column("transformation", JSON, nullable=False),
    Column("state", JSON, nullable=False),
    Column("needs_full", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The next schedule slot; NULL when the pipeline is disabled or not scheduled.
    Column("next_run_at", DateTime(timezone=True), nullable=True),
    Index("ix_pipelines_next_run_at", "next_run_at"),
    # A workspace's pipelines, newest first (migration 0009).
    Index("ix_pipelines_workspace", "workspace_id", "created_at", "id"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("pipeline_id", String(40), ForeignKey("pipelines.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("counters", JSON, nullable=False),
    Column("message", Text, nullable=True),
    Column("summary", JSON, nullable=False),
    Column("pid", Integer, nullable=True),
    Column("host", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    Column("owner", String(200), nullable=True),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    # Retries (issue 11): the attempt number, the run retried, and when it may start.
    Column("attempt", Integer, nullable=False, default=1, server_default="1"),
    Column("retry_of", String(40), nullable=True),
    Column("not_before", DateTime(timezone=True), nullable=True),
    Index("ix_runs_pipeline", "pipeline_id", "created_at"),
    Index("ix_runs_status_created", "status", "created_at"),
    # Every run of a workspace, newest first: walked backwards (migration 0009).
    Index("ix_runs_created", "created_at", "id"),
    # The database itself guarantees at most one live run per pipeline.
    Index(
        "ux_runs_one_live",
        "pipeline_id",
        unique=True,
        sqlite_where=Column("status").in_(LIVE_STATUSES),
        postgresql_where=Column("status").in_(LIVE_STATUSES),
    ),
)

run_errors = Table(
    "run_errors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("source_id", String(255), nullable=True),
    Column("step", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_run_errors_run", "run_id"),
)
