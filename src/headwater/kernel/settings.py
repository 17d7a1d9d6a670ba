"""Settings: read from the environment, in one place, and nowhere else."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Process-wide settings.

    - ``HEADWATER_HOME``: data directory (default ``~/.headwater``).
    - ``HEADWATER_DATABASE_URL``: metadata store URL (default: SQLite file in home).
    - ``HEADWATER_SECRET_KEY``: key that encrypts secrets at rest (default: a key
      file created with mode 0600 in the data directory on first start).
    """

    home: Path
    database_url: str
    secret_key: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("HEADWATER_HOME") or Path.home() / ".headwater").expanduser()
        url = env.get("HEADWATER_DATABASE_URL") or f"sqlite:///{home / 'headwater.db'}"
        return cls(home=home, database_url=url, secret_key=env.get("HEADWATER_SECRET_KEY") or None)

    @property
    def default_warehouse_url(self) -> str:
        return f"duckdb:///{self.home / 'warehouse.duckdb'}"
