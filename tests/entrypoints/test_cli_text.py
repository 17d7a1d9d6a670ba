"""Text output: user, Stripe and exception text is printed as text, never as markup.

One workspace is built once with hostile names everywhere (a connection, a property
description, a pipeline, customers in the Stripe sandbox), then each command's text
output is checked: it must not crash, must show the hostile text literally, and must
never pass a raw control character to the terminal.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from headwater.entrypoints.cli import output
from headwater.entrypoints.cli.commands import cli
from headwater.sandbox.testing import RunningSandbox, start_sandbox

MARKUP = "[/red]evil[bold]:smile:"  # closes a tag never opened; an emoji code
ESCAPE = "\x1b[2J\x1b]0;owned\x07"  # clear the screen; set the terminal title
HOSTILE = MARKUP + ESCAPE
HOSTILE_SHOWN = MARKUP + "\\x1b[2J\\x1b]0;owned\\x07"
EMAIL = "a[/red]b[bold]@example.com"


@dataclass
class Workspace:
    env: dict[str, str | None]
    sandbox: RunningSandbox
    connection: str
    pipeline: str
    run: str
    tmp: Path


def invoke(ws: Workspace, *args: str, stdin: str | None = None) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, list(args), input=stdin, env=ws.env, catch_exceptions=False)


def _json(ws: Workspace, *args: str, stdin: str | None = None) -> dict[str, str]:
    result = invoke(ws, *args, "--json", stdin=stdin)
    assert result.exit_code == 0, result.output
    document: dict[str, str] = json.loads(result.stdout)
    return document


def _add_customers(sb: RunningSandbox) -> None:
    with httpx.Client(base_url=sb.url, auth=(sb.secret_key, "")) as http:
        for index in range(3):
            form = {"email": f"{index}{EMAIL}", "name": HOSTILE, "metadata[note]": MARKUP}
            http.post("/v1/customers", data=form).raise_for_status()


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    tmp = tmp_path_factory.mktemp("text")
    env: dict[str, str | None] = {
        "HEADWATER_HOME": str(tmp / "home"),
        "HEADWATER_DATABASE_URL": None,
        "HEADWATER_SECRET_KEY": None,
    }
    with start_sandbox(customers=20, seed=9) as sb:
        _add_customers(sb)
        w = Workspace(env, sb, "", "", "", tmp)
        w.connection = _json(
            w, "connections", "add", "stripe", "--name", MARKUP, "--base-url", sb.url,
            stdin="sk_test_sandbox\n",
        )["id"]  # fmt: skip
        _json(w, "model", "add-property", "plan", "string", "--description", HOSTILE)
        _json(w, "warehouse", "set", f"duckdb:///{tmp}/{MARKUP}.duckdb")
        # A mapping whose validation errors quote the customer's email.
        mapping = tmp / "mapping.json"
        mapping.write_text(json.dumps({"email": "email", "created_at": "email"}))
        w.pipeline = _json(
            w, "pipelines", "add", "--connection", w.connection, "--name", MARKUP,
            "--description", HOSTILE, "--mapping", str(mapping),
        )["id"]  # fmt: skip
        ran = invoke(w, "pipelines", "run", w.pipeline, "--json")
        assert ran.exit_code == 3, ran.output  # every record failed validation
        w.run = json.loads(ran.stdout)["id"]
        yield w


def _commands(ws: Workspace) -> dict[str, tuple[list[str], str]]:
    """Command -> (arguments, text its output must show literally)."""
    changed = ws.tmp / "changed.json"
    changed.write_text(json.dumps({"created_at": "email"}))
    return {
        "connections add": (  # a name holds no control character (refused, below)
            ["connections", "add", "stripe", "--name", MARKUP, "--base-url", ws.sandbox.url],
            MARKUP,
        ),
        "connections list": (["connections", "list"], MARKUP),
        "connections show": (["connections", "show", ws.connection], MARKUP),
        "model show": (["model", "show"], HOSTILE_SHOWN),
        "warehouse set": (["warehouse", "set", f"duckdb:///{ws.tmp}/{MARKUP}.duckdb"], MARKUP),
        "warehouse show": (["warehouse", "show"], MARKUP),
        "pipelines add": (  # a name holds no control character (refused, see ERRORS)
            ["pipelines", "add", "--connection", ws.connection, "--name", MARKUP],
            MARKUP,
        ),
        "pipelines update": (
            # The save-time sample warning quotes the first failing customer (the newest).
            ["pipelines", "update", ws.pipeline, "--mapping", str(changed)],
            "[/red]b[bold]@example",
        ),
        "pipelines list": (["pipelines", "list"], MARKUP),
        "pipelines show": (["pipelines", "show", ws.pipeline], HOSTILE_SHOWN),
        "pipelines preview": (["pipelines", "preview", ws.pipeline], "[/red]b[bold]@example"),
        "pipelines run": (["pipelines", "run", ws.pipeline, "--full"], "[/red]b[bold]@example"),
        "runs list": (["runs", "list"], ws.run),
        "runs show": (["runs", "show", ws.run], "[/red]b[bold]@example"),
    }


COMMANDS = [
    "connections add",
    "connections list",
    "connections show",
    "model show",
    "warehouse set",
    "warehouse show",
    "pipelines add",
    "pipelines update",
    "pipelines list",
    "pipelines show",
    "pipelines preview",
    "pipelines run",
    "runs list",
    "runs show",
]


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide consoles, so that table cells are not wrapped and can be searched."""
    monkeypatch.setattr(output.out, "width", 1000)
    monkeypatch.setattr(output.err, "width", 1000)


@pytest.mark.usefixtures("wide")
@pytest.mark.parametrize("command", COMMANDS)
def test_text_output_shows_hostile_text_literally(ws: Workspace, command: str) -> None:
    args, shown = _commands(ws)[command]
    result = invoke(ws, *args, stdin="sk_test_sandbox\n")
    assert result.exit_code in (0, 3), result.output  # 3: a run with per-record errors
    output = result.stdout + result.stderr
    assert shown in output, output
    assert "\x1b" not in output
    assert "\x07" not in output


ERRORS = {
    "unknown pipeline": (["pipelines", "show", f"pl_{MARKUP}"], f"pl_{MARKUP}"),
    "bad property name": (["model", "add-property", "[red]x", "string"], "^[a-z][a-z0-9_]*$"),
    "bad mapping property": (["model", "rename-property", "[red]x", "y"], "[red]x"),
}


@pytest.mark.usefixtures("wide")
@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_show_hostile_text_literally(ws: Workspace, case: str) -> None:
    args, shown = ERRORS[case]
    result = invoke(ws, *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert shown in result.stderr, result.stderr
    assert result.stderr.startswith("error: ")


def test_a_pipeline_name_with_an_escape_sequence_is_refused(ws: Workspace) -> None:
    """Names are shown in tables and pages: the service refuses control characters in
    them (the CLI and the console took what the API refused)."""
    args = ["pipelines", "add", "--connection", ws.connection, "--name", HOSTILE]
    result = invoke(ws, *args)
    assert result.exit_code == 1
    assert "a pipeline name cannot hold control characters" in result.stderr
    assert "\x1b" not in result.stderr


@pytest.mark.parametrize("name", [HOSTILE, "two\nlines", "tab\there"])
def test_a_connection_name_with_control_characters_is_refused(ws: Workspace, name: str) -> None:
    """Connections had a rule of their own, and it let an escape sequence or a newline
    into a name that every table and page shows (pipelines, tokens and workspaces
    refused them)."""
    result = invoke(ws, "connections", "update", ws.connection, "--name", name)
    assert result.exit_code == 1
    assert "a connection name cannot hold control characters" in result.stderr
    assert "\x1b" not in result.stderr
    shown = _json(ws, "connections", "show", ws.connection)
    assert shown["name"] != name


def test_tables_never_cut_ids_at_80_columns(ws: Workspace) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ws.env}
    env |= {k: v for k, v in ws.env.items() if v is not None} | {"COLUMNS": "80"}
    for args in (["pipelines", "list"], ["connections", "list"], ["runs", "list"]):
        listed = subprocess.run(
            [sys.executable, "-m", "headwater", *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert max(len(line) for line in listed.splitlines()) <= 80, listed
        assert not re.search(r"\b(conn|pl|run)_\w*…", listed), listed
        lines = listed.splitlines()
        for wanted in {"pipelines": [ws.pipeline, ws.connection], "runs": [ws.run]}.get(
            args[0], [ws.connection]
        ):
            assert any(wanted in line for line in lines), (wanted, listed)


def test_pipelines_show_text_has_the_state_and_the_last_run(ws: Workspace) -> None:
    shown = invoke(ws, "pipelines", "show", ws.pipeline).stdout
    document = _json(ws, "pipelines", "show", ws.pipeline)
    last = document["last_run"]
    assert isinstance(last, dict)
    assert f"last run: {last['status']} ({last['kind']}) {last['id']}" in shown
    assert f"state: {json.dumps(document['state'])}" in shown
    assert "next run: " in shown


def test_pipelines_add_warns_but_saves_when_most_sample_customers_fail(ws: Workspace) -> None:
    bad = ws.tmp / "bad.json"
    bad.write_text(json.dumps({"email": "email", "created_at": "name"}))
    args = ["pipelines", "add", "--connection", ws.connection, "--name", "bad", "--mapping"]
    result = invoke(ws, *args, str(bad))
    assert result.exit_code == 0, result.output
    failing = re.search(
        r"^warning: (\d+) of 23 sampled customers fail \(validate\)", result.stdout, re.M
    )
    assert failing, result.stdout
    assert int(failing.group(1)) > 23 // 2
    document = _json(ws, *args, str(bad))
    [warning] = document["save_warnings"]
    assert warning.startswith(f"{failing.group(1)} of 23 sampled customers fail (validate)")
    assert invoke(ws, "pipelines", "show", document["id"]).exit_code == 0  # it was saved
