"""``POST /pipelines/preview`` answers, per sample, the row a run would write: values
converted to the Customer Model's types and spelled as every document spells them
(ISO 8601 times, numbers as JSON numbers), objects flattened to their columns, and the
conversion error a run would record, naming the property; what the code returned
stays beside it, unconverted (`returned`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from tests.api.conftest import Tenant

from headwater.entrypoints.cli.commands import cli
from headwater.sandbox.testing import RunningSandbox

PYTHON = """
def transform(c):
    if c["balance"] < 0:
        balance = "owes " + str(-c["balance"])     # no integer: a validate error
    else:
        balance = str(c["balance"])                 # "12": becomes 12
    return {"email": c["email"], "created_at": c["created"], "balance": balance,
            "address": {"city": (c.get("address") or {}).get("city")}}
"""


def test_a_preview_answers_converted_rows_and_conversion_errors(
    tenant: Tenant, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    http = tenant.http
    body = {"kind": "stripe", "name": "sb", "api_key": sandbox.secret_key, "base_url": sandbox.url}
    conn = http.post("/connections", json=body)
    assert conn.status_code == 201, conn.text
    added = http.post("/model/properties", json={"path": "balance", "type": "integer"})
    assert added.status_code == 201, added.text
    code = {"kind": "python", "source": PYTHON}
    answer = http.post(
        "/pipelines/preview",
        json={"connection_id": conn.json()["id"], "transformation": code, "limit": 100},
    )
    assert answer.status_code == 200, answer.text
    samples: list[dict[str, Any]] = answer.json()["samples"]
    ok = [s for s in samples if s["status"] == "ok"]
    failed = [s for s in samples if s["status"] == "error"]
    assert ok
    assert failed
    for s in ok:
        row, given = s["output"], s["input"]
        assert row["created_at"] == datetime.fromtimestamp(given["created"], UTC).isoformat()
        assert row["balance"] == given["balance"]  # a JSON number
        assert row["address_city"] == (given.get("address") or {}).get("city")
        assert "address" not in row
        assert row["first_name"] is None  # every column, null where nothing was given
        assert s["returned"]["created_at"] == given["created"]  # unix seconds, as returned
        assert s["returned"]["balance"] == str(given["balance"])
        assert (s["error"], s["step"]) == (None, None)
    for s in failed:
        assert s["input"]["balance"] < 0
        assert s["step"] == "validate"
        assert s["error"].startswith(
            f"property 'balance' (integer): cannot convert \"owes {-s['input']['balance']}\""
        )
        assert s["output"] is None
        assert s["returned"]["balance"] == f"owes {-s['input']['balance']}"
    # The CLI's --json prints the same document (DESIGN §8: the documents are one).
    code_file = tmp_path / "transform.py"
    code_file.write_text(PYTHON)
    args = ["pipelines", "preview", "--connection", conn.json()["id"], "--python"]
    args += [str(code_file), "--limit", "100", "--json"]
    printed = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout) == answer.json()
