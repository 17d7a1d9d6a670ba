"""``python -m headwater.sandbox``: the same command as ``headwater sandbox``."""

from __future__ import annotations

from headwater.sandbox.command import sandbox

if __name__ == "__main__":
    sandbox(prog_name="headwater sandbox")
