"""Ctrl-C while the command line is still loading its commands (a second or more on a
loaded machine) ends it as Ctrl-C does later: "Aborted!", exit 130, no traceback.
Before, the KeyboardInterrupt came out of whatever import it interrupted as a traceback
(and exit -2), which CI saw when a test pressed Ctrl-C too soon."""

from __future__ import annotations

import ast
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: A real SIGINT, sent by the process to itself while it imports the commands' modules
#: (the finder runs on that import; Python raises KeyboardInterrupt right after).
INTERRUPTED_WHILE_LOADING = """
import importlib.abc, os, signal, sys

class CtrlC(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "headwater.entrypoints.cli.runs":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
from headwater.entrypoints.cli import main
main()
"""


def test_ctrl_c_while_the_commands_load_aborts_without_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_WHILE_LOADING, "runs", "list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == "Aborted!"  # after a new line, as for any Ctrl-C
    assert done.returncode == 130
    assert done.stdout == ""


def test_the_package_loads_no_command_until_main_runs() -> None:
    """What makes the above hold: importing the package (as the console script does
    before calling `main`) loads none of the commands' modules."""
    probe = (
        "import sys; import headwater.entrypoints.cli; "
        "print(sorted(m for m in sys.modules if m.startswith('headwater.entrypoints.cli.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def _reading_stdin(pid: int) -> bool:
    """Whether process `pid` waits in read(0, ...) (x86-64 Linux: syscall 0)."""
    try:
        return Path(f"/proc/{pid}/syscall").read_text().startswith("0 0x0 ")
    except OSError:
        return False


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
@pytest.mark.parametrize(
    "command",
    [
        ["connections", "add", "stripe", "--name", "x"],
        ["pipelines", "delete", "pl_nope"],
        ["model", "drop-property", "email"],
    ],
)
def test_ctrl_c_while_a_command_waits_exits_130(
    home: Path, command: list[str], json_flag: list[str]
) -> None:
    """Once loaded, a command interrupted with Ctrl-C (here, waiting for a key on
    stdin) said "Aborted!" but exited 1, the code of a failed command, where the loading
    above, `pipelines run` and `runs show --follow` exit 130, as shells do.  At a
    confirmation it said "not confirmed" (an error at --yes, exit 1) as for an answer."""
    args = [*command, *json_flag]
    process = subprocess.Popen(
        [sys.executable, "-m", "headwater", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not _reading_stdin(process.pid):
        assert time.monotonic() < deadline, "the command never waited for its key"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].endswith("Aborted!")  # after any question
    assert "not confirmed" not in stderr
    assert process.returncode == 130
    assert stdout == ""


#: Runs the command line as the console script does and prints, at exit, the modules of
#: the command line and the server it loaded.
LOADED_AT_EXIT = """
import atexit, sys
def loaded():
    names = ("headwater.entrypoints", "fastapi", "uvicorn", "playwright")
    print(sorted(m for m in sys.modules if m.startswith(names)), file=sys.stderr)
atexit.register(loaded)
from headwater.entrypoints.cli import main
main()
"""


def test_a_command_loads_its_own_group_not_every_command(home: Path) -> None:
    """Every command loaded every other one (the server, FastAPI and the API's schemas,
    the demo, the accounts...): 2.2 s of imports of a quiet machine before
    `headwater connections list` did anything, more than the command itself, and
    seconds more on a loaded one.  A command now loads its group only."""
    done = subprocess.run(
        [sys.executable, "-c", LOADED_AT_EXIT, "connections", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "[]"
    loaded = set(ast.literal_eval(done.stderr.strip().splitlines()[-1]))
    assert "headwater.entrypoints.cli.connections" in loaded
    for other in (
        "headwater.entrypoints.cli.pipelines",
        "headwater.entrypoints.cli.demo",
        "headwater.entrypoints.cli.accounts",
        "headwater.entrypoints.serve.command",
        "fastapi",
        "uvicorn",
    ):
        assert other not in loaded, sorted(loaded)
