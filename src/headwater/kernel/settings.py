"""Settings: a plain value.  The entry points read it from the environment
(`headwater.entrypoints.environment`) and pass it down; nothing below them reads
the environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


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
    - `proxies`: the outbound proxies, as the usual variables give them (``http``,
      ``https``, ``all``: a proxy's URL; ``no``: the hosts reached directly).
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
    proxies: tuple[tuple[str, str], ...] = ()

    @classmethod
    def embedded(cls, home: Path, secret_key: str | None = None) -> Settings:
        """The embedded defaults under `home`: a SQLite store beside the warehouse."""
        return cls(
            home=home, database_url=f"sqlite:///{home / 'headwater.db'}", secret_key=secret_key
        )

    def proxy_for(self, url: str) -> str | None:
        """The proxy through which to reach `url`: its scheme's, else ``all``'s, unless
        its host is one of ``no``'s (``*``, a name, a domain suffix, with or without a
        port); None: directly."""
        proxies = dict(self.proxies)
        parts = urlsplit(url)
        proxy = proxies.get(parts.scheme) or proxies.get("all")
        if not proxy or not parts.hostname:
            return None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return None if _bypassed(parts.hostname, port, proxies.get("no", "")) else proxy

    @property
    def default_warehouse_url(self) -> str:
        return f"duckdb:///{self.home / 'warehouse.duckdb'}"


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether `no_proxy` (``*``, or names and domain suffixes, each perhaps with a
    port: ``localhost,.internal,stripe.test:8080``) names `host` at `port`."""
    host = host.lower()
    for entry in no_proxy.lower().replace(" ", "").split(","):
        if entry == "*":
            return True
        name, at = entry.rsplit(":", 1) if entry.count(":") == 1 else (entry, "")
        if at and at != str(port):
            continue
        name = name.lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False
