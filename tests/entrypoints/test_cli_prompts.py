"""A command that asks for a secret at the terminal (a Stripe key, a password) asks on
stderr (click's hidden prompts do): stdout holds only what the command prints, with
``--json`` one document, so ``headwater users add EMAIL --json | jq .id`` shows the
question and gives jq its JSON, also when the question gets no answer (Ctrl-D) or
stdin is closed.  (The confirmations of `pipelines delete` and `model drop-property`
were asked on stdout: test_cli_json_commands.)"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from headwater.sandbox.testing import start_sandbox

#: An answer that is no answer: Ctrl-D, the end of input, at the question.
CTRL_D = None


def _answered(
    args: list[str], *questions: tuple[str, str | None]
) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a terminal as stdin (stdout and stderr piped), typing each
    ``(question, answer)``'s answer once the question was asked (on stdout or stderr:
    where is what is tested); `CTRL_D` ends the input there."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "headwater", *args],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # No controlling terminal: run from a terminal, getpass would ask on that one
        # (/dev/tty) rather than on the stdin given here.
        start_new_session=True,
    )
    os.close(slave)
    assert process.stdout is not None
    assert process.stderr is not None
    out, err = process.stdout.fileno(), process.stderr.fileno()
    shown = {out: b"", err: b""}
    try:
        for question, answer in questions:
            deadline = time.monotonic() + 60
            while question.encode() not in b"".join(shown.values()):
                assert time.monotonic() < deadline, shown
                ready, _, _ = select.select(list(shown), [], [], 1)
                for fd in ready:
                    shown[fd] += os.read(fd, 65536)
            time.sleep(0.5)  # the terminal's echo is turned off after the question
            os.write(master, b"\x04" if answer is CTRL_D else answer.encode() + b"\n")
        rest_out, rest_err = process.communicate(timeout=120)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    stdout, stderr = (shown[out] + rest_out).decode(), (shown[err] + rest_err).decode()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_the_key_and_password_questions_are_asked_on_stderr(home: Path) -> None:
    with start_sandbox(customers=1) as sb:
        added = _answered(
            ["connections", "add", "stripe", "--name", "S", "--base-url", sb.url, "--json"],
            ("Stripe API key", "sk_test_sandbox"),
        )
    assert added.returncode == 0, (added.stdout, added.stderr)
    assert json.loads(added.stdout)["api_key"] == "sk_test_…dbox"  # one document
    assert "Stripe API key" in added.stderr
    assert "sk_test_sandbox" not in added.stdout + added.stderr

    user = _answered(
        ["users", "add", "ann@example.com", "--json"],
        ("Password", "a long secret"),
        ("Repeat for confirmation", "a long secret"),
    )
    assert user.returncode == 0, (user.stdout, user.stderr)
    assert json.loads(user.stdout)["email"] == "ann@example.com"
    assert "Password" in user.stderr
    assert "a long secret" not in user.stdout + user.stderr


def test_a_password_with_no_terminal_to_ask_it_on_is_an_error_naming_the_option(
    home: Path,
) -> None:
    """``users add EMAIL`` in a script (no terminal, no ``--password-stdin``) printed
    Python's GetPassWarning, "Password input may be echoed", "Password: Aborted!" and
    no error document with ``--json``; it is an error naming ``--password-stdin``."""
    done = subprocess.run(
        [sys.executable, "-m", "headwater", "users", "add", "ann@example.com", "--json"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["type"] == "invalid_input"
    assert error["field"] == "--password-stdin"
    assert "no terminal" in error["message"]
    assert "Warning" not in done.stderr
    assert done.stderr.startswith("error: --password-stdin: ")


def _error_document(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The error document `done` printed, alone on stdout, having failed (exit 1)."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    document = json.loads(done.stdout)  # exactly one JSON document, nothing else
    assert set(document) == {"error"}, document
    # The same message; the command line may name the option that read the field.
    shown, message = done.stderr.rstrip().rsplit("error: ", 1)[1], document["error"]["message"]
    assert shown.partition(": ")[2] == message.partition(": ")[2], (shown, message)
    error: dict[str, Any] = document["error"]
    return error


def test_ctrl_d_at_a_question_is_an_error_document(home: Path) -> None:
    """Ctrl-D at the question for a Stripe key or a password ended the command with
    "Aborted!" on stderr and a bare newline on stdout: with ``--json``, no document for
    the script reading it.  It is an error document naming what was not given, exit 1
    (as a confirmation given no answer is), and nothing is added."""
    key = _answered(
        ["connections", "add", "stripe", "--name", "S", "--json"], ("Stripe API key", CTRL_D)
    )
    assert _error_document(key) == {
        "type": "invalid_input",
        "message": "api_key: no API key given (end of input at the question)",
        "field": "api_key",
    }
    ended: list[list[tuple[str, str | None]]] = [
        [("Password", CTRL_D)],
        [("Password", "a long secret"), ("Repeat for confirmation", CTRL_D)],
    ]
    for answers in ended:
        password = _answered(["users", "add", "ann@example.com", "--json"], *answers)
        error = _error_document(password)
        assert error["field"] == "password", error
        assert "no password given" in error["message"]
        assert "a long secret" not in password.stdout + password.stderr
    confirmation = _answered(["pipelines", "delete", "pl_nope", "--json"], ("Delete", CTRL_D))
    assert _error_document(confirmation)["field"] == "--yes"
    listed = subprocess.run(
        [sys.executable, "-m", "headwater", "connections", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(listed.stdout) == []


@pytest.mark.parametrize(
    "args",
    [
        ["pipelines", "delete", "pl_nope"],
        ["model", "drop-property", "email"],
        ["connections", "add", "stripe", "--name", "S"],
        ["connections", "rotate-key", "conn_nope"],
        ["users", "add", "ann@example.com"],
        ["users", "add", "ann@example.com", "--password-stdin"],
    ],
)
def test_a_closed_stdin_is_an_empty_one(home: Path, args: list[str]) -> None:
    """Run with stdin closed (``<&-``), a command that asks or reads stdin failed with
    a traceback (``'NoneType' object has no attribute 'isatty'``, ``input(): lost
    sys.stdin``) and nothing on stdout; it answers as with an empty stdin: the same
    error document, exit 1."""
    command = [sys.executable, "-m", "headwater", *args, "--json"]
    runs = {
        stdin: subprocess.run(
            ["sh", "-c", f'exec "$@" {stdin}', "sh", *command],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for stdin in ("<&-", "</dev/null")
    }
    closed, empty = (_error_document(done) for done in runs.values())
    assert closed == empty
