"""A command that asks for a secret at the terminal (a Stripe key, a password) asks on
stderr (click's hidden prompts do): stdout holds only what the command prints, with
``--json`` one document, so ``headwater users add EMAIL --json | jq .id`` shows the
question and gives jq its JSON.  (No defect found; the confirmations of `pipelines
delete` and `model drop-property` were asked on stdout: test_cli_json_commands.)"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from headwater.sandbox.testing import start_sandbox


def _answered(args: list[str], *questions: tuple[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a terminal as stdin (stdout and stderr piped), typing each
    ``(question, answer)``'s answer once the question was asked (on stdout or stderr:
    where is what is tested)."""
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
            os.write(master, answer.encode() + b"\n")
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
