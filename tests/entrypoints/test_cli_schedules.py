"""`pipelines show` and `pipelines list` tell when a scheduled pipeline runs next."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from headwater.entrypoints.cli import output
from headwater.entrypoints.cli.commands import cli
from headwater.kernel.entities import utcnow
from headwater.sandbox.testing import RunningSandbox, start_sandbox


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=20, seed=5) as sb:
        yield sb


def text(*args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def doc(*args: str, stdin: str | None = None) -> Any:
    return json.loads(text(*args, "--json", stdin=stdin))


def test_show_and_list_give_the_next_run_time(
    home: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output.out, "width", 1000)  # the list table: one line per pipeline
    conn = doc(
        "connections", "add", "stripe", "--name", "S", "--base-url", sandbox.url,
        stdin="sk_test_sandbox\n",
    )  # fmt: skip
    added = doc("pipelines", "add", "--connection", conn["id"], "--name", "P", "--schedule", "1h")
    when = datetime.fromisoformat(added["next_run_at"])
    assert utcnow() < when <= utcnow() + timedelta(hours=1)
    pid = added["id"]
    assert doc("pipelines", "show", pid)["next_run_at"] == added["next_run_at"]
    assert [p["next_run_at"] for p in doc("pipelines", "list")] == [added["next_run_at"]]
    shown = f"{when:%Y-%m-%d %H:%M:%S} UTC"
    assert f"next run at: {shown}" in text("pipelines", "show", pid)
    assert shown in text("pipelines", "list")

    text("pipelines", "disable", pid)
    assert doc("pipelines", "show", pid)["next_run_at"] is None
    assert "next run at: never (disabled)" in text("pipelines", "show", pid)
    text("pipelines", "enable", pid)
    text("pipelines", "update", pid, "--schedule", "off")
    assert doc("pipelines", "show", pid)["next_run_at"] is None
    assert "next run at: when asked (no schedule)" in text("pipelines", "show", pid)
