"""What the tests read about a running process."""

from __future__ import annotations

import os


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process `pid`, all its threads (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
