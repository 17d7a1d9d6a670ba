"""Every command that answers with a document takes ``--json``: the document as the API
answers the same request, or the API's error document.  ``pipelines enable|disable|
delete``, ``identity set`` and ``profiles rebuild`` printed only text, so a script had
to parse sentences for what the API gives as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
from tests.entrypoints.test_cli import _connection, doc, invoke

from headwater.entrypoints.api.schemas.pipelines import PipelineDeleted
from headwater.entrypoints.api.schemas.profiles import RebuildPublic
from headwater.entrypoints.api.schemas.settings import IdentityPublic
from headwater.entrypoints.cli.commands import cli
from headwater.sandbox.testing import start_sandbox

#: Processes that serve until stopped: they print logs and addresses, not a document.
LONG_RUNNING = {"demo", "sandbox", "serve", "worker"}


def _commands(command: click.Command, path: tuple[str, ...] = ()) -> dict[str, click.Command]:
    if isinstance(command, click.Group):
        found: dict[str, click.Command] = {}
        context = click.Context(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None, name
            found |= _commands(sub, (*path, name))
        return found
    return {" ".join(path): command}


def test_every_command_but_the_long_running_ones_takes_json() -> None:
    commands = _commands(cli)
    without = {
        path
        for path, command in commands.items()
        if "--json" not in {opt for param in command.params for opt in getattr(param, "opts", [])}
    }
    assert without == LONG_RUNNING


def _error(*args: str) -> dict[str, Any]:
    result = invoke(*args, "--json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)  # one document, nothing else
    assert result.stderr.startswith("error: "), result.stderr
    error: dict[str, Any] = document["error"]
    return error


def test_pipelines_enable_disable_and_delete_print_the_apis_documents(
    home: Path, tmp_path: Path
) -> None:
    with start_sandbox(customers=5, seed=3) as sb:
        conn = _connection(sb)["id"]
        pid = doc("pipelines", "add", "--connection", conn, "--name", "P")["id"]
        assert doc("pipelines", "run", pid)["status"] == "succeeded"

    disabled = doc("pipelines", "disable", pid)
    assert disabled == doc("pipelines", "show", pid)  # POST /pipelines/{id}/disable
    assert disabled["enabled"] is False
    enabled = doc("pipelines", "enable", pid)
    assert enabled == doc("pipelines", "show", pid)
    assert enabled["enabled"] is True

    assert _error("pipelines", "enable", "pl_nope") == {
        "type": "not_found",
        "message": "no pipeline with id 'pl_nope'",
        "field": None,
    }
    assert _error("pipelines", "disable", "pl_nope")["type"] == "not_found"
    assert _error("pipelines", "delete", "pl_nope", "--yes")["type"] == "not_found"

    deleted = doc("pipelines", "delete", pid, "--yes")  # DELETE /pipelines/{id}
    assert deleted == {"id": pid, "deleted": True, "identities_removed": 5}
    assert set(deleted) == set(PipelineDeleted.model_fields)
    assert invoke("pipelines", "show", pid).exit_code == 1


def test_identity_set_and_profiles_rebuild_print_the_apis_documents(
    home: Path, tmp_path: Path
) -> None:
    with start_sandbox(customers=4, seed=3) as sb:
        conn = _connection(sb)["id"]
        pid = doc("pipelines", "add", "--connection", conn, "--name", "P")["id"]
        assert doc("pipelines", "run", pid)["status"] == "succeeded"

    blocked = tmp_path / "blocked.json"
    blocked.write_text(json.dumps({"phone": ["0"]}))
    args = ("identity", "set", "--identifiers", "email,phone", "--blocked", str(blocked))
    settings = doc(*args)  # PUT /identity-resolution
    assert settings == {"identifiers": ["email", "phone"], "blocked": settings["blocked"]}
    assert settings == doc("identity", "show")
    assert settings["blocked"]["phone"] == ["0"]
    assert set(settings) == set(IdentityPublic.model_fields)

    refused = _error("identity", "set", "--identifiers", "email,nope")
    assert refused["type"] == "invalid_input"
    assert "nope" in refused["message"]

    rebuilt = doc("profiles", "rebuild")  # POST /profiles/rebuild
    assert set(rebuilt) == set(RebuildPublic.model_fields)
    assert rebuilt["considered"] == 4
    assert rebuilt["removed"] == 0


def test_a_confirmation_is_asked_on_stderr_and_not_confirmed_is_an_error(home: Path) -> None:
    """The question of ``pipelines delete`` and ``model drop-property`` was printed on
    stdout, before the document of ``--json`` (``Delete ...? [y/N]: {...}``: no JSON for
    ``jq``), and an answer other than yes, or none (a script without ``--yes``), ended
    with ``Aborted!`` and no error document.  The question goes to stderr now, and not
    confirming is an error at ``--yes`` that changes nothing."""
    with start_sandbox(customers=2, seed=3) as sb:
        conn = _connection(sb)["id"]
        pid = doc("pipelines", "add", "--connection", conn, "--name", "P")["id"]
    doc("model", "add-property", "plan", "string")

    for args, answer in (
        (("pipelines", "delete", pid), None),
        (("pipelines", "delete", pid), "n\n"),
        (("model", "drop-property", "plan"), None),
    ):
        refused = invoke(*args, "--json", stdin=answer)
        assert refused.exit_code == 1, refused.output
        error = json.loads(refused.stdout)["error"]  # the one document on stdout
        assert error["type"] == "invalid_input"
        assert error["field"] == "--yes"
        assert "not confirmed" in error["message"]
        assert "[y/N]" in refused.stderr
        text = invoke(*args, stdin=answer)
        assert text.exit_code == 1
        assert text.stdout == ""
        assert "error: --yes: not confirmed" in text.stderr
    assert doc("pipelines", "show", pid)["id"] == pid
    assert "plan" in {p["name"] for p in doc("model", "show")["properties"]}

    deleted = invoke("pipelines", "delete", pid, "--json", stdin="y\n")
    assert deleted.exit_code == 0, deleted.output
    assert json.loads(deleted.stdout) == {"id": pid, "deleted": True, "identities_removed": 0}
    assert "Delete " in deleted.stderr
    dropped = invoke("model", "drop-property", "plan", "--json", stdin="y\n")
    assert dropped.exit_code == 0, dropped.output
    assert "plan" not in {p["name"] for p in json.loads(dropped.stdout)["properties"]}


def test_preview_limit_out_of_range_is_a_usage_error_at_the_option(home: Path) -> None:
    """``pipelines preview --limit 0`` (or 101) failed as ``error: limit: must be
    between 1 and 100``, exit 1, naming no option, where ``runs list --limit 0`` is a
    usage error at ``--limit``, exit 2; and the help gave no range."""
    refused = subprocess.run(
        [sys.executable, "-m", "headwater", "pipelines", "preview", "pl_x", "--limit", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2, refused.stderr
    assert "Invalid value for '--limit': 0 is not in the range 1<=x<=100" in refused.stderr
    shown = invoke("pipelines", "preview", "--help").stdout
    assert "1<=x<=100" in shown
    assert "--limit" in shown


def _main(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headwater", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_missing_argument_is_a_usage_error_everywhere(home: Path) -> None:
    """``warehouse set`` with neither URL nor ``--url-env``, and ``pipelines preview``
    with neither PIPELINE_ID nor ``--connection``, failed as ``error: ...``, exit 1,
    where every other missing argument or option (``connections update`` with nothing
    to change, ``runs show`` without RUN_ID) is a usage error, exit 2."""
    for args, wanted in (
        (("warehouse", "set"), "give the URL or --url-env VAR"),
        (("pipelines", "preview"), "give a PIPELINE_ID, or --connection with a definition"),
    ):
        plain = _main(*args)
        assert plain.returncode == 2, plain.stderr
        assert f"Error: {wanted}" in plain.stderr
        assert plain.stderr.startswith("Usage: "), plain.stderr
        as_json = _main(*args, "--json")
        assert as_json.returncode == 2, as_json.stderr
        error = json.loads(as_json.stdout)["error"]
        assert error["type"] == "usage"
        assert wanted in error["message"]


def test_pipelines_update_with_nothing_to_change_is_a_usage_error(home: Path) -> None:
    """``pipelines update ID`` with no option said "Updated pipeline ..." (exit 0) when
    nothing changed, where ``connections update ID`` with nothing is a usage error."""
    done = _main("pipelines", "update", "pl_anything")
    assert done.returncode == 2, done.stderr
    assert "Error: give what to change (the options of --help)" in done.stderr
    assert done.stdout == ""
