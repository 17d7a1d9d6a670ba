"""The one place that reads Headwater's environment variables.

- ``HEADWATER_HOME``: data directory (default ``~/.headwater``).
- ``HEADWATER_DATABASE_URL``: metadata store URL (default: SQLite file in home).
- ``HEADWATER_SECRET_KEY``: key that encrypts secrets at rest (default: a key file
  created with mode 0600 in the data directory on first start).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from headwater.kernel.settings import Settings


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    home = Path(env.get("HEADWATER_HOME") or Path.home() / ".headwater").expanduser()
    defaults = Settings.embedded(home, env.get("HEADWATER_SECRET_KEY") or None)
    url = env.get("HEADWATER_DATABASE_URL") or defaults.database_url
    return Settings(home=home, database_url=url, secret_key=defaults.secret_key)
