"""With ``--json`` a command prints one JSON document on stdout whether it succeeds or
fails: a failure is the API's error document, ``{"error": {"type", "message",
"field"}}``, with the same exit code as without ``--json`` (1; 2 for a usage error),
and the one-line error still on stderr.  Before, a failure printed nothing on stdout,
so a script reading the document (``| jq .id``) got no JSON at all."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.cli_process import run_cli

from headwater.sandbox.testing import start_sandbox


def _error(done: subprocess.CompletedProcess[str], code: int = 1) -> dict[str, Any]:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    document = json.loads(done.stdout)  # exactly one JSON document, nothing else
    assert set(document) == {"error"}, document
    error: dict[str, Any] = document["error"]
    assert set(error) == {"type", "message", "field"}, error
    assert error["message"], error
    return error


def test_a_failed_command_prints_the_error_document(home: Path) -> None:
    missing = _error(run_cli("connections", "show", "conn_nope", "--json"))
    assert missing["type"] == "not_found"
    assert "conn_nope" in missing["message"]
    assert missing["field"] is None

    run = _error(run_cli("runs", "show", "run_nope", "--json"))
    assert run["type"] == "not_found"

    unset = run_cli(
        "connections", "add", "stripe", "--name", "x", "--api-key-env", "NOPE_UNSET", "--json"
    )
    error = _error(unset)
    assert error == {
        "type": "invalid_input",
        "message": "--api-key-env: environment variable NOPE_UNSET is not set",
        "field": "--api-key-env",
    }
    assert "environment variable NOPE_UNSET is not set" in unset.stderr  # and on stderr


def test_a_rejected_key_and_an_unreachable_stripe_are_error_documents(home: Path) -> None:
    key = "sk_test_NotTheSandboxKey123"
    with start_sandbox(customers=1) as sb:
        bad = run_cli(
            "connections", "add", "stripe", "--name", "x", "--base-url", sb.url,
            "--api-key-env", "KEY", "--json", env={"KEY": key},
        )  # fmt: skip
    error = _error(bad)
    assert error["type"] == "invalid_input"
    assert error["field"] == "api_key"
    assert "invalid or revoked" in error["message"]
    assert key not in bad.stdout + bad.stderr

    down = run_cli(
        "connections", "add", "stripe", "--name", "x", "--base-url", "http://127.0.0.1:9",
        "--api-key-env", "KEY", "--json", env={"KEY": "sk_test_sandbox"},
    )  # fmt: skip
    error = _error(down)
    assert error["type"] == "unavailable"
    assert "Could not reach Stripe at http://127.0.0.1:9" in error["message"]


def test_a_usage_error_is_an_error_document_with_exit_code_2(home: Path) -> None:
    bad_number = run_cli(
        "connections", "add", "stripe", "--name", "x", "--requests-per-second", "abc", "--json"
    )
    error = _error(bad_number, code=2)
    assert error["type"] == "usage"
    assert error["field"] == "--requests-per-second"
    assert "'abc' is not a valid float" in error["message"]

    missing = _error(run_cli("connections", "add", "stripe", "--json"), code=2)
    assert missing["field"] == "--name"

    # Without --json, a usage error stays click's text, exit 2.
    plain = run_cli("connections", "add", "stripe", "--requests-per-second", "abc")
    assert plain.returncode == 2
    assert plain.stdout == ""
    assert "is not a valid float" in plain.stderr
