"""`pipelines run` exit codes and outcomes, `runs cancel`, `runs show` (issue 17 §7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.entrypoints.test_cli import _connection, doc, invoke

from headwater.sandbox.testing import start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import runner


@pytest.mark.slow
def test_pipelines_run_exit_codes_tell_whether_everything_landed(
    home: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"email": "email", "created_at": "name"}))  # names are not dates
    with start_sandbox(customers=200, seed=61) as sb:
        conn = _connection(sb)["id"]
        good = doc("pipelines", "add", "--connection", conn, "--name", "good")["id"]
        worse = doc(
            "pipelines", "add", "--connection", conn, "--name", "bad", "--mapping", str(bad)
        )
        clean = invoke("pipelines", "run", good, "--json")
        assert clean.exit_code == 0, clean.output
        assert json.loads(clean.stdout)["outcome"] == "succeeded"
        partial = invoke("pipelines", "run", worse["id"], "--json")
        text = invoke("pipelines", "run", worse["id"], "--full")
        sb.control(malformed_rate=1.0)
        failed = invoke("pipelines", "run", good, "--full")
    assert partial.exit_code == 3, partial.output
    document = json.loads(partial.stdout)
    assert document["status"] == "succeeded"
    assert document["outcome"] == "succeeded_with_errors"
    failures = document["counters"]["failed"]["validate"]
    assert 0 < failures <= 200
    assert document["warnings"][0].startswith(f"{failures:,} of 200 records failed (validate")
    assert document["errors"][0]["step"] == "validate"
    assert "created_at" in document["errors"][0]["message"]
    assert text.exit_code == 3, text.output
    assert "succeeded with errors" in text.stdout
    assert f"warning: {failures:,} of 200 records failed" in text.stdout
    assert failed.exit_code == 1, failed.output
    assert "failed" in failed.stdout
    assert "SQL" not in failed.output


def test_runs_cancel_refuses_a_finished_run_and_help_documents_the_exit_codes(
    home: Path,
) -> None:
    with start_sandbox(customers=50, seed=62) as sb:
        conn = _connection(sb)["id"]
        pid = doc("pipelines", "add", "--connection", conn, "--name", "p")["id"]
        run = doc("pipelines", "run", pid)
    refused = invoke("runs", "cancel", run["id"])
    assert refused.exit_code == 1
    assert f"run {run['id']} already ended (succeeded)" in refused.output
    missing = invoke("runs", "cancel", "run_nope")
    assert missing.exit_code == 1
    assert "no run with id 'run_nope'" in missing.output
    shown = invoke("pipelines", "run", "--help").stdout
    for line in ("0    succeeded", "3    succeeded with per-record errors", "1    failed", "130"):
        assert line in shown


def test_runs_list_and_show_refuse_limits_out_of_range(home: Path) -> None:
    """``--limit -1`` listed every run (an error on PostgreSQL), a 25-digit limit ended
    on an OverflowError; the API takes 1 to 100."""
    for args in (
        ["runs", "list", "--limit", "-1"],
        ["runs", "list", "--limit", "0"],
        ["runs", "list", "--limit", "9" * 25],
        ["runs", "show", "run_x", "--errors", "-5"],
    ):
        refused = invoke(*args)
        assert refused.exit_code == 2, args
        assert "is not in the range" in refused.output, args


def test_list_filters_naming_nothing_are_refused_not_ignored(home: Path) -> None:
    """``pipelines list --connection`` with an unknown connection printed an empty list
    (exit 0) where the API answers 404, and an empty ``--connection`` or ``--pipeline``
    was taken as no filter at all: the whole workspace was listed."""
    with start_sandbox(customers=5, seed=63) as sb:
        conn = _connection(sb)["id"]
        pid = doc("pipelines", "add", "--connection", conn, "--name", "p")["id"]
    assert [p["id"] for p in doc("pipelines", "list", "--connection", conn)] == [pid]
    for args, message in (
        (["pipelines", "list", "--connection", "conn_nope"], "no connection with id 'conn_nope'"),
        (["pipelines", "list", "--connection", ""], "no connection with id ''"),
        (["runs", "list", "--pipeline", ""], "no pipeline with id ''"),
    ):
        refused = invoke(*args, "--json")
        assert refused.exit_code == 1, (args, refused.output)
        error = json.loads(refused.stdout)["error"]  # the one document: the error's
        assert error == {"type": "not_found", "message": message, "field": None}, args
        assert message in refused.stderr, (args, refused.stderr)


def test_runs_show_follow_exits_as_pipelines_run_does(home: Path, tmp_path: Path) -> None:
    """``pipelines run`` interrupted says to follow the run with ``runs show --follow``,
    which exited 0 whatever the run's outcome: a script waiting on a failed run was told
    it succeeded.  Following now ends with ``pipelines run``'s exit codes; showing a run
    without following it is still 0."""
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps({"email": "email", "created_at": "name"}))  # not dates
    bad = str(bad_file)
    with start_sandbox(customers=30, seed=64) as sb:
        conn = _connection(sb)["id"]
        good = doc("pipelines", "add", "--connection", conn, "--name", "good")["id"]
        worse = doc("pipelines", "add", "--connection", conn, "--name", "bad", "--mapping", bad)
        ended = {0: invoke("pipelines", "run", good, "--json")}
        ended[3] = invoke("pipelines", "run", worse["id"], "--json")
        sb.control(malformed_rate=1.0)
        ended[1] = invoke("pipelines", "run", good, "--full", "--json")
    for code, result in ended.items():
        assert result.exit_code == code, result.output
        run_id = json.loads(result.stdout)["id"]
        followed = invoke("runs", "show", run_id, "--follow", "--json")
        assert followed.exit_code == code, (code, followed.output)
        assert json.loads(followed.stdout)["id"] == run_id
        assert invoke("runs", "show", run_id, "--follow").exit_code == code
        assert invoke("runs", "show", run_id).exit_code == 0
    assert "Exit codes" in invoke("runs", "show", "--help").stdout


@pytest.mark.parametrize("where", ["opening the store", "reading the run"])
def test_ctrl_c_anywhere_in_runs_show_follow_json_still_prints_the_document(
    home: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """``runs show --follow --json`` promises one document when Ctrl-C stops the
    following.  A Ctrl-C that landed while the command opened the store (seconds on a
    loaded machine, waiting on the service's writes) ended it with exit 130 and nothing
    on stdout, which CI saw as an empty document; now it says it stopped following and
    prints the run as it stands wherever the Ctrl-C lands."""
    with start_sandbox(customers=5, seed=65) as sb:
        conn = _connection(sb)["id"]
        pid = doc("pipelines", "add", "--connection", conn, "--name", "p")["id"]
        run_id = doc("pipelines", "run", pid)["id"]
    target, name = (App, "open") if where == "opening the store" else (runner, "get_run")
    real = getattr(target, name)
    pressed: list[bool] = []

    def ctrl_c_once(*args: Any, **kwargs: Any) -> Any:
        if not pressed:
            pressed.append(True)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, ctrl_c_once)
    followed = invoke("runs", "show", run_id, "--follow", "--json")
    assert pressed
    assert followed.exit_code == 130, followed.output
    assert f"stopped following; run {run_id} goes on" in followed.stderr
    assert json.loads(followed.stdout)["id"] == run_id  # one document, the run's


@pytest.mark.slow
def test_runs_list_filters_by_status_as_the_api_does(home: Path) -> None:
    """`GET /runs?status=` had no CLI twin: finding the failed runs meant reading every
    one; ``runs list --status`` takes the API's statuses and refuses others."""
    with start_sandbox(customers=30, seed=63) as sb:
        conn = _connection(sb)["id"]
        pid = doc("pipelines", "add", "--connection", conn, "--name", "p")["id"]
        good = doc("pipelines", "run", pid)
        sb.control(malformed_rate=1.0)
        bad = invoke("pipelines", "run", pid, "--full", "--json")
    assert bad.exit_code == 1, bad.output
    failed = json.loads(bad.stdout)
    assert [r["id"] for r in doc("runs", "list", "--status", "failed")] == [failed["id"]]
    assert [r["id"] for r in doc("runs", "list", "--status", "succeeded")] == [good["id"]]
    assert doc("runs", "list", "--status", "running") == []
    both = doc("runs", "list", "--pipeline", pid, "--status", "succeeded")
    assert [r["id"] for r in both] == [good["id"]]
    text = invoke("runs", "list", "--status", "failed")
    assert failed["id"] in text.stdout
    assert good["id"] not in text.stdout
    refused = invoke("runs", "list", "--status", "bogus")
    assert refused.exit_code == 2
    assert "succeeded" in refused.output  # the choices are named
