"""The console's front end is bundled one way: package.json's "build" script (esbuild),
which scripts/install runs, so the two cannot differ ("build" named a file,
frontend/build.mjs, that did not exist, and the install script had its own command)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]


def test_the_install_script_builds_with_npm_run_build() -> None:
    commands = [
        line
        for line in (ROOT / "scripts" / "install").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert any(re.search(r"\bnpm run\b.*\bbuild\b", line) for line in commands)
    assert not any("esbuild" in line for line in commands)  # no second copy
    build = json.loads((ROOT / "package.json").read_text())["scripts"]["build"]
    assert build.startswith("esbuild frontend/console.js ")
    assert "--outdir=src/headwater/entrypoints/console/static/dist" in build


@pytest.mark.slow
def test_npm_run_build_bundles_the_console(tmp_path: Path) -> None:
    done = subprocess.run(
        ["npm", "run", "--silent", "build", "--", f"--outdir={tmp_path}"],  # elsewhere
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "console.js").stat().st_size > 100_000  # htmx, CodeMirror, uPlot
    assert (tmp_path / "console.css").is_file()
