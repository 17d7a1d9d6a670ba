"""Tables (`output.table`), as a user reads them and as a script greps them.

- Piped (stdout not a terminal, no ``COLUMNS``): one line per row, every value whole,
  however wide, so ``grep`` and ``awk`` see whole rows; no padding at line ends.
- A terminal, or ``COLUMNS`` given: the table fits the width; ids stay whole on one
  line, other cells wrap between words, and a word longer than its column ends with
  ``…``; no word is ever broken in two (``succ`` / ``eeded``, as they were).
"""

from __future__ import annotations

import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from dataclasses import dataclass, field
from fcntl import ioctl
from typing import Any

import pytest
from rich.cells import cell_len

from headwater.sandbox.testing import start_sandbox

PIPELINE = "Customers of the European Union, imported hourly for the marketing team"
CONNECTION = "Stripe sandbox of the European shop"


@dataclass
class Home:
    env: dict[str, str]
    documents: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _environment(home_env: dict[str, str]) -> dict[str, str]:
    """This process's environment with the data directory of the test, and neither a
    width nor a store of the machine's."""
    unset = ("COLUMNS", "LINES", "HEADWATER_DATABASE_URL", "HEADWATER_SECRET_KEY")
    return {k: v for k, v in os.environ.items() if k not in unset} | home_env


def _cli(home_env: dict[str, str], *args: str, columns: str | None = None) -> str:
    env = _environment(home_env)
    if columns is not None:
        env["COLUMNS"] = columns
    done = subprocess.run(
        [sys.executable, "-m", "headwater", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def _tty(home_env: dict[str, str], *args: str, columns: int = 80) -> str:
    """What the command shows on a terminal `columns` wide (a pseudo-terminal)."""
    env = _environment(home_env)
    env["TERM"] = "xterm-256color"
    master, slave = pty.openpty()
    ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "headwater", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed (EIO on Linux)
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors
    shown = b"".join(chunks).decode()
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown).replace("\r\n", "\n")


COMMANDS = {
    "pipelines": ["pipelines", "list"],
    "connections": ["connections", "list"],
    "runs": ["runs", "list"],
    "profiles": ["profiles", "list"],
    "tokens": ["tokens", "list"],
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    env = {"HEADWATER_HOME": str(tmp_path_factory.mktemp("tables") / "home")}
    with start_sandbox(customers=6, seed=11) as sb:
        add = ["connections", "add", "stripe", "--name", CONNECTION, "--base-url", sb.url]
        subprocess.run(
            [sys.executable, "-m", "headwater", *add, "--api-key-env", "KEY"],
            env=_environment(env) | {"KEY": sb.secret_key},
            check=True,
            capture_output=True,
        )
        h = Home(env)
        [connection] = json.loads(_cli(env, "connections", "list", "--json"))
        added = ["pipelines", "add", "--connection", connection["id"], "--name", PIPELINE]
        json.loads(_cli(env, *added, "--schedule", "1h", "--json"))
        pipeline = json.loads(_cli(env, "pipelines", "list", "--json"))[0]["id"]
        json.loads(_cli(env, "pipelines", "run", pipeline, "--json"))
        _cli(env, "tokens", "create", "--name", "a token for the nightly export script")
        for name, args in COMMANDS.items():
            h.documents[name] = json.loads(_cli(env, *args, "--json"))
        yield h


def _ids(home: Home, name: str) -> list[str]:
    ids = [d["id"] for d in home.documents[name]]
    if name == "pipelines":
        ids += [d["connection_id"] for d in home.documents[name]]
        ids += [d["last_run"]["id"] for d in home.documents[name]]
    if name == "runs":
        ids += [d["pipeline_id"] for d in home.documents[name]]
    assert ids
    return ids


@pytest.mark.parametrize("name", list(COMMANDS))
def test_piped_tables_have_one_line_per_row_with_every_value_whole(home: Home, name: str) -> None:
    shown = _cli(home.env, *COMMANDS[name])
    lines = shown.splitlines()
    assert all(line.strip() for line in lines), shown  # no blank lines around the table
    assert all(line == line.rstrip() for line in lines), shown  # no padding at line ends
    for document in home.documents[name]:
        [row] = [line for line in lines if document["id"] in line]
        for key in ("name", "base_url", "pipeline_id"):
            if key in document:
                assert document[key] in row, (key, row)
    if name == "pipelines":
        [document] = home.documents[name]
        row = next(line for line in lines if document["id"] in line)
        assert PIPELINE in row
        last = document["last_run"]
        assert f"{last['status']} ({last['kind']}) {last['id']}" in row
        assert f"{document['next_run_at'][:10]} " in row
        assert len(row) > 80  # wider than any terminal default: not wrapped


def _whole_words(shown: str, wide: str, width: int) -> None:
    """Every line fits `width`; every word shown is a word of the wide table, or the
    start of one ended by ``…``: nothing is broken in the middle."""
    words = set(wide.split())
    for line in shown.splitlines():
        assert cell_len(line) <= width, (line, shown)
        assert line == line.rstrip(), shown
        for word in line.split():
            if word in words or not word.strip("─"):  # a word, or the rule under the header
                continue
            assert word.endswith("…"), (word, shown)
            assert any(w.startswith(word[:-1]) for w in words), (word, shown)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_tables_at_80_columns_keep_words_and_ids_whole(home: Home, name: str) -> None:
    wide = _cli(home.env, *COMMANDS[name])
    for shown in (
        _cli(home.env, *COMMANDS[name], columns="80"),
        _tty(home.env, *COMMANDS[name], columns=80),
    ):
        _whole_words(shown, wide, 80)
        for identifier in _ids(home, name):
            assert identifier in shown, (identifier, shown)


def test_table_cells_spell_values_as_the_json_document_does(home: Home) -> None:
    """`connections list` showed its events-read column as Python spells it (``True``),
    where ``connections show`` and ``--json`` say ``true``."""
    [document] = home.documents["connections"]
    shown = _cli(home.env, *COMMANDS["connections"])
    row = next(line for line in shown.splitlines() if document["id"] in line)
    assert row.split()[-1] == json.dumps(document["permissions"]["events_read"]), row
