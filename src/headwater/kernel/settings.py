"""Settings: a plain value.  The entry points read it from the environment
(`headwater.entrypoints.environment`) and pass it down; nothing below them reads
the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Process-wide settings.

    - `home`: data directory (metadata store, DuckDB warehouse, key file).
    - `database_url`: metadata store URL (SQLite file in `home` by default).
    - `secret_key`: key that encrypts secrets at rest (``None``: a key file created with
      mode 0600 in `home` on first start).
    - `run_lease_seconds`: how long a live run's lease holds without renewal; a timer
      renews it every tenth of that, so a run whose process died or hung is closed
      about this long after its last renewal (DESIGN.md §7).
    - `run_retries`: how many times the service retries a run that failed on a transient
      cause (Stripe or the warehouse unreachable) or whose worker was lost (at once),
      each retry its own run.
    - `run_retry_seconds`: the wait before the first retry; it doubles for each next one.
    - `webhook_rate` / `webhook_burst`: Stripe deliveries accepted per connection and
      second on average / in a burst (more answer 429, and Stripe retries later).
    - `stripe_max_in_flight`: the most requests a Stripe connection's full read keeps
      in flight (it adapts below this cap to what its budget and latency need).
    """

    home: Path
    database_url: str
    secret_key: str | None
    run_lease_seconds: float = 30.0
    run_retries: int = 3
    run_retry_seconds: float = 120.0
    webhook_rate: float = 50.0
    webhook_burst: float = 400.0
    stripe_max_in_flight: int = 20

    @classmethod
    def embedded(cls, home: Path, secret_key: str | None = None) -> Settings:
        """The embedded defaults under `home`: a SQLite store beside the warehouse."""
        return cls(
            home=home, database_url=f"sqlite:///{home / 'headwater.db'}", secret_key=secret_key
        )

    @property
    def default_warehouse_url(self) -> str:
        return f"duckdb:///{self.home / 'warehouse.duckdb'}"
