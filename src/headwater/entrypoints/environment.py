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
    )


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
