"""The benches' ``--engines`` option: warehouse engines by name, checked before anything runs.

``postgresql`` and ``postgres`` name the same engine (the benches spelled it each way);
any other name, or an empty one, is refused with the names known, as an argparse
error: a bench never measures its default warehouse under a name it did not know.
"""

from __future__ import annotations

import argparse

#: The engines, and the spellings each is known by.
ENGINES = {"duckdb": ("duckdb",), "postgresql": ("postgresql", "postgres")}


def engine_list(text: str) -> list[str]:
    """The engines of a comma-separated list, each once, in their first order."""
    known = {alias: engine for engine, aliases in ENGINES.items() for alias in aliases}
    out: list[str] = []
    for name in (part.strip().lower() for part in text.split(",")):
        if name not in known:
            raise argparse.ArgumentTypeError(
                f"unknown engine {name!r}: the engines are {', '.join(ENGINES)}"
            )
        if known[name] not in out:
            out.append(known[name])
    return out
