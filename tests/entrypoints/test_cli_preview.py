"""``headwater pipelines preview`` shows the row a run would write: values converted to
the Customer Model's types (an ISO 8601 datetime where the code returned unix seconds,
a number where it returned text), object properties as their columns, and the error a
run would record for a customer whose value cannot become its property's type."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from headwater.entrypoints.cli import output
from headwater.entrypoints.cli.commands import cli
from headwater.sandbox.testing import RunningSandbox, start_sandbox

PYTHON = """
def transform(c):
    balance = str(c["balance"]) if c["balance"] >= 0 else "owes " + str(-c["balance"])
    return {"email": c["email"], "created_at": c["created"], "balance": balance,
            "address": {"city": (c.get("address") or {}).get("city")}}
"""


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=80, seed=4) as sb:
        yield sb


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide console, so that table cells are not wrapped and can be searched."""
    monkeypatch.setattr(output.out, "width", 1000)


def invoke(*args: str, stdin: str | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_the_preview_prints_converted_rows_and_conversion_errors(
    home: Path, sandbox: RunningSandbox, tmp_path: Path, wide: None
) -> None:
    added = invoke(
        "connections", "add", "stripe", "--name", "sb", "--base-url", sandbox.url, "--json",
        stdin="sk_test_sandbox\n",
    )  # fmt: skip
    conn = json.loads(added.stdout)["id"]
    invoke("model", "add-property", "balance", "integer")
    code = tmp_path / "transform.py"
    code.write_text(PYTHON)
    given = ("pipelines", "preview", "--connection", conn, "--python", str(code), "--limit", "80")
    samples: list[dict[str, Any]] = json.loads(invoke(*given, "--json").stdout)["samples"]
    ok = [s for s in samples if s["status"] == "ok"]
    failed = [s for s in samples if s["status"] == "error"]
    assert ok
    assert failed
    for s in ok:
        created = datetime.fromtimestamp(s["input"]["created"], UTC).isoformat()
        assert s["output"]["created_at"] == created
        assert s["output"]["balance"] == s["input"]["balance"]
        assert s["output"]["address_city"] == (s["input"].get("address") or {}).get("city")
        assert s["returned"]["created_at"] == s["input"]["created"]
    for s in failed:
        assert s["step"] == "validate"
        assert s["error"].startswith("property 'balance' (integer): cannot convert \"owes ")
    text = invoke(*given).stdout
    assert "Warehouse row (output)" in text
    first = ok[0]["output"]
    assert f'created_at: "{first["created_at"]}"' in text  # ISO 8601, as the documents
    assert "ERROR (validate): property 'balance' (integer)" in text
