"""The command line in its own process, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

MAIN = "from headwater.entrypoints.cli import main; main()"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`headwater ARGS...` in a new process (this interpreter), `env` over ours."""
    return subprocess.run(
        [sys.executable, "-c", MAIN, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )
