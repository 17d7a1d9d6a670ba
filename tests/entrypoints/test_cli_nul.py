"""The CLI on a PostgreSQL metadata store, given text holding the NUL character (which
PostgreSQL cannot keep): one clear error line naming the field, exit 1, nothing
changed; an id holding it is not found.  The services refuse it, so the console
does too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from tests.conftest import pg_schema_url

from headwater.entrypoints.cli.commands import cli
from headwater.sandbox.testing import start_sandbox

N = "\x00"


def _invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def _doc(*args: str, stdin: str | None = None) -> Any:
    result = _invoke(*args, "--json", stdin=stdin)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _failed(result: Result, *words: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error:"), result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.mark.postgres
def test_text_holding_nul_is_refused_by_the_cli_on_postgresql(
    home: Path, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADWATER_DATABASE_URL", pg_schema_url(pg_schema))
    with start_sandbox(customers=5, seed=2) as sb:
        key = "sk_test_sandbox\n"
        conn = _doc("connections", "add", "stripe", "--name", "S", "--base-url", sb.url, stdin=key)
        pipeline = _doc("pipelines", "add", "--connection", conn["id"], "--name", "p")
        before = (_doc("connections", "list"), _doc("pipelines", "list"))
        add = ("connections", "add", "stripe", "--base-url", sb.url, "--name")
        _failed(_invoke(*add, "a" + N, stdin=key), "name:", "NUL")
        _failed(_invoke("connections", "update", conn["id"], "--name", "b" + N), "name:", "NUL")
        update = ("pipelines", "update", pipeline["id"], "--description")
        _failed(_invoke(*update, "d" + N), "description:", "NUL")
        password = "long enough\n"
        user = ("users", "add", "a" + N + "@x.io", "--password-stdin")
        _failed(_invoke(*user, stdin=password), "email:", "NUL")
        _failed(_invoke("users", "join", "a" + N + "@x.io"), "email:", "NUL")
        webhook = ("connections", "webhook", conn["id"], "--url", "https://x" + N)
        _failed(_invoke(*webhook), "url:", "NUL")
        for args, noun in (
            (("connections", "show", "conn_" + N), "connection"),
            (("pipelines", "show", "pl_" + N), "pipeline"),
            (("pipelines", "list", "--connection", "conn_" + N), "connection"),
            (("runs", "show", "run_" + N), "run"),
            (("runs", "cancel", "run_" + N), "run"),
            (("tokens", "show", "tok_" + N), "token"),
            (("tokens", "revoke", "tok_" + N), "token"),
            (("workspaces", "show", "ws_" + N), "workspace"),
            (("--workspace", "ws_" + N, "pipelines", "list"), "workspace"),
        ):
            _failed(_invoke(*args), f"no {noun} with id")
        assert (_doc("connections", "list"), _doc("pipelines", "list")) == before
