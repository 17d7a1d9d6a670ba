"""The CLI contract: command names, --json documents, exit codes, key handling."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from headwater.entrypoints.cli.commands import cli
from headwater.sandbox.testing import RunningSandbox, start_sandbox


@pytest.fixture
def sandbox() -> Any:
    with start_sandbox(customers=300, seed=4) as sb:
        yield sb


def invoke(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, env=env, catch_exceptions=False)


def doc(*args: str, **kw: Any) -> Any:
    result = invoke(*args, "--json", **kw)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # exactly one JSON document, nothing else


def _connection(sb: RunningSandbox) -> dict[str, Any]:
    return doc(  # type: ignore[no-any-return]
        "connections",
        "add",
        "stripe",
        "--name",
        "Sandbox",
        "--base-url",
        sb.url,
        "--requests-per-second",
        "50",
        stdin="sk_test_sandbox\n",
    )


def test_connection_key_from_stdin_env_and_file_never_printed(
    home: Path, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    first = _connection(sandbox)
    assert first["id"].startswith("conn_")
    assert first["api_key"] == "sk_test_…dbox"
    second = doc(
        "connections",
        "add",
        "stripe",
        "--name",
        "env",
        "--base-url",
        sandbox.url,
        "--api-key-env",
        "MY_KEY",
        env={"MY_KEY": "rk_test_customers_only"},
    )
    assert second["permissions"] == {"customers_read": True, "events_read": False}
    key_file = tmp_path / "key"
    key_file.write_text("sk_test_sandbox\n")
    third = doc(
        "connections",
        "add",
        "stripe",
        "--name",
        "file",
        "--base-url",
        sandbox.url,
        "--api-key-file",
        str(key_file),
    )
    listed = doc("connections", "list")
    assert [c["id"] for c in listed] == [first["id"], second["id"], third["id"]]
    shown = invoke("connections", "show", first["id"])
    assert shown.exit_code == 0
    assert "sk_test_…dbox" in shown.stdout  # masked, never the key itself
    assert "sandbox" not in shown.stdout.replace("Sandbox", "")
    bad = invoke(
        "connections",
        "add",
        "stripe",
        "--name",
        "x",
        "--base-url",
        sandbox.url,
        stdin="sk_test_wrongwrongwrong\n",
    )
    assert bad.exit_code == 1
    assert "wrongwrong" not in bad.output
    assert "401" in bad.output or "invalid" in bad.output.lower()
    assert invoke("connections", "delete", third["id"]).exit_code == 0
    assert len(doc("connections", "list")) == 2


def test_model_and_warehouse_commands(home: Path, pg_schema: str) -> None:
    shown = doc("model", "show")
    assert [p["name"] for p in shown["properties"]][:3] == ["email", "first_name", "last_name"]
    added = doc("model", "add-property", "address.region", "string")
    address = next(p for p in added["properties"] if p["name"] == "address")
    assert "region" in [p["name"] for p in address["properties"]]
    assert invoke("model", "rename-property", "address.region", "area").exit_code == 0
    dropped = doc("model", "drop-property", "address.area", "--yes")
    address = next(p for p in dropped["properties"] if p["name"] == "address")
    assert "area" not in [p["name"] for p in address["properties"]]
    bad = invoke("model", "add-property", "Bad", "string")
    assert bad.exit_code == 1
    assert "must match" in bad.output
    assert doc("warehouse", "show")["engine"] == "duckdb"
    refused = invoke("warehouse", "set", "postgresql://root@127.0.0.1:1/test")
    assert refused.exit_code == 1
    assert doc("warehouse", "show")["engine"] == "duckdb"  # unchanged
    url = f"postgresql://root@127.0.0.1:5432/test?schema={pg_schema}"
    assert invoke("warehouse", "set").exit_code == 2  # neither the URL nor --url-env: usage
    unset = invoke("warehouse", "set", "--url-env", "HW_NOT_SET")
    assert "HW_NOT_SET is not set" in unset.output
    # From the environment: a password in the URL stays out of the process list.
    found = doc("warehouse", "set", "--url-env", "HW_URL", env={"HW_URL": url})
    assert found["engine"] == "postgresql"


def test_pipeline_lifecycle_and_run_documents(
    home: Path, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    conn = _connection(sandbox)
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"email": "lower(email)", "created_at": "created"}))
    flt = tmp_path / "f.json"
    flt.write_text(
        json.dumps(
            {
                "logical": "and",
                "conditions": [{"property": "email", "operator": "is not null", "values": []}],
            }
        )
    )
    added = doc(
        "pipelines",
        "add",
        "--connection",
        conn["id"],
        "--name",
        "P",
        "--mapping",
        str(mapping),
        "--filter",
        str(flt),
        "--schedule",
        "1h",
    )
    pid = added["id"]
    assert added["schedule"] == "1h"
    assert added["filter_text"] == "email is not null"
    run = doc("pipelines", "run", pid)
    assert run["status"] == "succeeded"
    assert run["counters"]["written"] + run["counters"]["filtered_out"] == 300
    assert doc("runs", "show", run["id"])["id"] == run["id"]
    assert [r["id"] for r in doc("runs", "list", "--pipeline", pid)] == [run["id"]]
    assert invoke("pipelines", "disable", pid).exit_code == 0
    refused = invoke("pipelines", "run", pid)
    assert refused.exit_code == 1
    assert "disabled" in refused.output
    assert invoke("pipelines", "enable", pid).exit_code == 0
    updated = doc("pipelines", "update", pid, "--suggested-mapping", "--no-incremental")
    assert updated["incremental"] is False
    assert updated["next_run_kind"] == "full"
    assert len(doc("pipelines", "list")) == 1
    assert doc("pipelines", "show", pid)["last_run"]["id"] == run["id"]
    assert invoke("pipelines", "delete", pid, "--yes").exit_code == 0
    assert doc("pipelines", "list") == []


def test_update_refuses_a_new_filter_and_clear_filter_together(
    home: Path, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """``--filter F --clear-filter`` removed the filter, silently dropping the new one
    the same command gave (and exited 0); the two contradict each other."""
    conn = _connection(sandbox)
    pid = doc("pipelines", "add", "--connection", conn["id"], "--name", "P")["id"]
    flt = tmp_path / "f.json"
    condition = {"property": "email", "operator": "is not null", "values": []}
    flt.write_text(json.dumps({"logical": "and", "conditions": [condition]}))
    refused = invoke("pipelines", "update", pid, "--filter", str(flt), "--clear-filter")
    assert refused.exit_code == 1, refused.output
    assert "filter: give a new filter or clear the filter, not both" in refused.output
    shown = doc("pipelines", "show", pid)
    assert shown["filter"] is None
    assert shown["next_run_kind"] == "full"  # its first run, not a changed definition
    assert doc("pipelines", "update", pid, "--filter", str(flt))["filter_text"] == (
        "email is not null"
    )
    assert doc("pipelines", "update", pid, "--clear-filter")["filter"] is None


@pytest.mark.slow
def test_installed_entry_point_and_failed_run_exit_code(home: Path, tmp_path: Path) -> None:
    with start_sandbox(customers=50, seed=2) as sb:
        conn = _connection(sb)
        pid = doc("pipelines", "add", "--connection", conn["id"], "--name", "P")["id"]
        sb.control(malformed_rate=1.0)
        env = {**os.environ, "HEADWATER_HOME": str(home)}
        proc = subprocess.run(
            [sys.executable, "-m", "headwater", "pipelines", "run", pid, "--json"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
    assert proc.returncode == 1
    failed = json.loads(proc.stdout)
    assert failed["status"] == "failed"
    assert failed["message"]


def test_demo_imports_the_sandbox_into_the_default_duckdb_warehouse(home: Path) -> None:
    result = invoke("demo", "--customers", "500", "--seed", "3", "--no-console")
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.stdout
    assert "read 500" in result.stdout
    assert str(home / "warehouse.duckdb") in result.stdout
    shown = doc("warehouse", "show")
    assert shown["identities"] == 500
    # The run resolved its identities: customers sharing an email share a profile.
    assert 0 < shown["profiles"] < 500


def test_demo_refuses_a_negative_count_and_says_when_the_sandbox_cannot_start(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    negative = CliRunner().invoke(cli, ["demo", "--customers", "-1", "--no-console"])
    assert negative.exit_code == 2, negative.output
    assert isinstance(negative.exception, SystemExit)
    assert "--customers" in negative.stderr

    def unstartable(**options: Any) -> RunningSandbox:
        # A real sandbox process that exits at once: a key it refuses.
        return start_sandbox(keys={"pk_test_not_a_secret_key": "*"}, **options)

    # The package's `demo` is the command: the module is reached by its full name.
    demo_module = importlib.import_module("headwater.entrypoints.cli.demo")
    monkeypatch.setattr(demo_module, "start_sandbox", unstartable)
    failed = CliRunner().invoke(cli, ["demo", "--customers", "5", "--no-console"])
    assert failed.exit_code == 1, failed.output
    assert isinstance(failed.exception, SystemExit)
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: the Stripe sandbox did not start: ")
    assert "must start with sk_test_" in lines[0]


def test_demo_refuses_more_customers_than_it_can_hold_and_says_so_in_help(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """There was no upper bound: a huge count had the sandbox generate every customer in
    memory (about 1 KB each) before anything was said."""

    def never(**options: Any) -> RunningSandbox:
        raise AssertionError("the sandbox was started")

    monkeypatch.setattr(
        importlib.import_module("headwater.entrypoints.cli.demo"), "start_sandbox", never
    )
    refused = CliRunner().invoke(cli, ["demo", "--customers", "1000001", "--no-console"])
    assert refused.exit_code == 2, refused.output
    assert isinstance(refused.exception, SystemExit)
    said = " ".join(refused.stderr.split())
    assert "--customers" in said
    assert "1000001 is not in the range 0<=x<=1000000" in said
    shown = " ".join(CliRunner().invoke(cli, ["demo", "--help"]).output.split())
    assert "at most 1,000,000" in shown
