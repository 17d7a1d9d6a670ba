"""The one place that reads Headwater's environment variables.

- ``HEADWATER_HOME``: data directory (default ``~/.headwater``).
- ``HEADWATER_DATABASE_URL``: metadata store URL (default: SQLite file in home).
- ``HEADWATER_SECRET_KEY``: key that encrypts secrets at rest (default: a key file
  created with mode 0600 in the data directory on first start).
- ``HEADWATER_RUN_LEASE_SECONDS``: how long a live run's lease holds without renewal
  (default 30; a run whose worker died or hung is closed about this long after its
  last renewal).
- ``HEADWATER_RUN_RETRIES``: how many times the service retries a run that failed on a
  transient cause (default 3; 0: never).
- ``HEADWATER_RUN_RETRY_SECONDS``: the wait before the first retry (default 120); it
  doubles for each next one.
- ``HEADWATER_WEBHOOK_RATE``, ``HEADWATER_WEBHOOK_BURST``: Stripe webhook deliveries
  accepted per connection and second on average (default 50) and in a burst (400).
- ``HEADWATER_STRIPE_MAX_IN_FLIGHT``: the most requests a Stripe connection's full read
  keeps in flight (default 20, at most 64).
- ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY`` (or in lower case, which
  wins): the proxy through which Stripe is reached (an ``http://`` or ``https://``
  URL), and the hosts reached directly (comma-separated names or domain suffixes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from headwater.kernel.errors import InvalidInput
from headwater.kernel.settings import Settings


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    home = Path(env.get("HEADWATER_HOME") or Path.home() / ".headwater").expanduser()
    defaults = Settings.embedded(home, env.get("HEADWATER_SECRET_KEY") or None)
    url = env.get("HEADWATER_DATABASE_URL") or defaults.database_url
    lease = env.get("HEADWATER_RUN_LEASE_SECONDS") or ""
    retry = env.get("HEADWATER_RUN_RETRY_SECONDS") or ""
    rate = env.get("HEADWATER_WEBHOOK_RATE") or ""
    burst = env.get("HEADWATER_WEBHOOK_BURST") or ""
    in_flight = env.get("HEADWATER_STRIPE_MAX_IN_FLIGHT") or ""
    return Settings(
        home=home,
        database_url=url,
        secret_key=defaults.secret_key,
        run_lease_seconds=_positive_seconds("HEADWATER_RUN_LEASE_SECONDS", lease)
        if lease
        else defaults.run_lease_seconds,
        run_retries=_count("HEADWATER_RUN_RETRIES", env.get("HEADWATER_RUN_RETRIES") or "3"),
        run_retry_seconds=_positive_seconds("HEADWATER_RUN_RETRY_SECONDS", retry)
        if retry
        else defaults.run_retry_seconds,
        webhook_rate=_positive("HEADWATER_WEBHOOK_RATE", rate) if rate else defaults.webhook_rate,
        webhook_burst=_positive("HEADWATER_WEBHOOK_BURST", burst)
        if burst
        else defaults.webhook_burst,
        stripe_max_in_flight=_in_flight_cap(in_flight) if in_flight else 20,
        proxies=_proxies(env),
    )


def _proxies(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for scheme in ("http", "https", "all", "no"):
        name = f"{scheme}_proxy"
        if env.get(name) is None:
            name = name.upper()
        value = (env.get(name) or "").strip()
        if not value:
            continue
        if scheme != "no" and not value.lower().startswith(("http://", "https://")):
            raise InvalidInput(
                "must be an http:// or https:// proxy URL (Headwater's Stripe client "
                f"speaks to no other kind); got one starting {value.split(':')[0]!r}",
                name,
            )
        found.append((scheme, value))
    return tuple(found)


def _positive(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (value > 0 and value != float("inf")):
        raise InvalidInput(f"must be a positive number; got {text!r}", name)
    return value


def _in_flight_cap(text: str) -> int:
    name = "HEADWATER_STRIPE_MAX_IN_FLIGHT"
    if not (text.strip().isdigit() and 1 <= int(text) <= 64):
        raise InvalidInput(f"must be a whole number from 1 to 64; got {text!r}", name)
    return int(text)


def _positive_seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise InvalidInput(f"must be a positive number of seconds; got {text!r}", name)
    return value


def _count(name: str, text: str) -> int:
    if not text.isdigit():
        raise InvalidInput(f"must be a whole number, 0 or more; got {text!r}", name)
    return int(text)
