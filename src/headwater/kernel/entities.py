"""Metadata entities as plain dataclasses (no I/O)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from headwater.kernel.state import PipelineState

SCHEDULES = ("off", "5m", "15m", "30m", "1h", "2h", "3h", "6h", "8h", "12h", "24h")


class RunStatus(StrEnum):
    """A run's status (DESIGN.md §6): ``queued`` → ``running`` → an ending."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def live(self) -> bool:
        return self in LIVE_STATUSES


class RunKind(StrEnum):
    """A full run re-reads everything and purges; an incremental one applies changes."""

    FULL = "full"
    INCREMENTAL = "incremental"


RUN_STATUSES = tuple(RunStatus)
LIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Workspace:
    id: str
    name: str
    customer_model: list[dict[str, Any]]
    #: The warehouse URL encrypted with the store's cipher (it may carry a password);
    #: None: the default DuckDB file in the data directory.
    warehouse_url_encrypted: str | None
    created_at: datetime
    #: Identity resolution settings as stored (``IdentitySettings.as_dict``); None: defaults.
    identity_settings: dict[str, Any] | None = None


@dataclass
class Connection:
    id: str
    workspace_id: str
    name: str
    kind: str
    base_url: str
    requests_per_second: float
    api_key_encrypted: str
    api_key_masked: str
    livemode: bool
    events_read: bool
    created_at: datetime
    #: The Stripe account (``acct_…``) the key belongs to; None when Stripe did not say
    #: (or the connection predates recording it).  A new key must be of this account.
    account_id: str | None = None

    def public(self) -> dict[str, Any]:
        """What the API and CLI show: never the key, only its masked form."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "base_url": self.base_url,
            "requests_per_second": self.requests_per_second,
            "api_key": self.api_key_masked,
            "livemode": self.livemode,
            "account_id": self.account_id,
            "permissions": {"customers_read": True, "events_read": self.events_read},
            "created_at": self.created_at.isoformat(),
        }


@dataclass
class Pipeline:
    id: str
    workspace_id: str
    connection_id: str
    name: str
    description: str
    enabled: bool
    schedule: str
    incremental: bool
    filter: dict[str, Any] | None
    transformation: dict[str, Any]
    #: A display copy of the state saved in the warehouse (the warehouse's is the truth).
    state: PipelineState
    needs_full: bool
    created_at: datetime
    updated_at: datetime
    #: When the schedule runs it next (`kernel.schedules`); None when disabled or `off`.
    #: Written only by `manage` (schedule or enabled changed) and the scheduler's CAS.
    next_run_at: datetime | None = None


@dataclass
class Run:
    id: str
    pipeline_id: str
    kind: str  # a `RunKind`
    status: RunStatus
    counters: dict[str, Any]
    message: str | None
    summary: dict[str, Any]
    pid: int | None
    host: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None  # the last progress update
    #: Who executes it (``host:pid:token``) and until when its lease holds; renewed by a
    #: timer while the run is alive, never by progress (DESIGN.md §7).
    owner: str | None = None
    lease_expires_at: datetime | None = None
    cancel_requested: bool = False
    #: Retries of a run that failed on a transient cause: each is its own run, numbered
    #: from 1, pointing at the run it retries, and not claimed before `not_before`.
    attempt: int = 1
    retry_of: str | None = None
    not_before: datetime | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.status = RunStatus(self.status)

    @property
    def live(self) -> bool:
        return self.status.live

    @property
    def record_errors(self) -> int:
        """How many records failed (counted, not only the stored ones)."""
        return int(self.counters.get("failed_total", 0))
