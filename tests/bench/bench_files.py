"""The benches as their tests need them: a module of bench/ loaded from its file
(`load`), a bench script run in a process of its own (`run`).

bench/ is no package, and on sys.path its modules (sandbox.py, service.py,
warehouse.py ...) would shadow any top-level module of those names.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    """bench/`name`.py as a module of its own (``bench_<name>``)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """bench/`script` run with `args` in a process of its own, its output captured."""
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
