"""`headwater connections rotate-key` and `update`: what the API's ``POST
/connections/{id}/rotate-key`` and ``PATCH /connections/{id}`` do, over the same
services; the key comes from stdin, an environment variable or a file, never argv."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.entrypoints.test_cli import doc, invoke

from headwater.entrypoints.environment import settings_from_env
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.auth import workspaces


@pytest.fixture
def sandbox() -> Any:
    with start_sandbox(
        customers=50, seed=4, keys={"rk_test_customers_only": "customers:read"}
    ) as sb:
        yield sb


def _stored_key(connection_id: str) -> str:
    app = App.open(settings_from_env())
    try:
        conn = connections.get_connection(app, connection_id)
        return app.cipher.decrypt(conn.api_key_encrypted, context=conn.id)
    finally:
        app.close()


def _add(sb: RunningSandbox) -> dict[str, Any]:
    return doc(  # type: ignore[no-any-return]
        "connections", "add", "stripe", "--name", "Sandbox", "--base-url", sb.url,
        stdin="sk_test_sandbox\n",
    )  # fmt: skip


def test_rotate_key_verifies_the_new_key_and_keeps_the_old_one_on_error(
    home: Path, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    conn = _add(sandbox)
    rotated = doc(
        "connections", "rotate-key", conn["id"], "--api-key-env", "NEW_KEY",
        env={"NEW_KEY": "rk_test_customers_only"},
    )  # fmt: skip
    assert rotated["id"] == conn["id"]
    assert rotated["api_key"] == "rk_test_…only"
    assert rotated["permissions"] == {"customers_read": True, "events_read": False}
    assert "rk_test_customers_only" not in json.dumps(rotated)
    assert _stored_key(conn["id"]) == "rk_test_customers_only"

    refused = invoke("connections", "rotate-key", conn["id"], stdin="sk_test_wrongwrongwrong\n")
    assert refused.exit_code == 1
    assert "api_key" in refused.stderr
    assert "wrongwrong" not in refused.output
    malformed = invoke("connections", "rotate-key", conn["id"], stdin="pk_test_public\n")
    assert malformed.exit_code == 1
    assert "public" not in malformed.output
    missing = invoke("connections", "rotate-key", conn["id"], "--api-key-env", "NOT_SET_ANYWHERE")
    assert missing.exit_code == 1
    assert "NOT_SET_ANYWHERE is not set" in missing.stderr
    assert _stored_key(conn["id"]) == "rk_test_customers_only"  # the old key stays

    key_file = tmp_path / "key"
    key_file.write_text("sk_test_sandbox\n")
    text = invoke("connections", "rotate-key", conn["id"], "--api-key-file", str(key_file))
    assert text.exit_code == 0, text.output
    assert "sk_test_…dbox" in text.stdout
    assert "sk_test_sandbox" not in text.output
    assert _stored_key(conn["id"]) == "sk_test_sandbox"
    assert (
        invoke("connections", "rotate-key", "conn_nope", stdin="sk_test_sandbox\n").exit_code == 1
    )


def test_rotate_key_reads_stdin_in_a_real_process(home: Path, sandbox: RunningSandbox) -> None:
    conn = _add(sandbox)
    done = subprocess.run(
        [sys.executable, "-m", "headwater", "connections", "rotate-key", conn["id"], "--json"],
        input="rk_test_customers_only\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["api_key"] == "rk_test_…only"
    assert "rk_test_customers_only" not in done.stdout + done.stderr


def test_update_changes_only_what_is_given_and_refuses_bad_values(
    home: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HW_KEY", sandbox.secret_key)
    conn = _add(sandbox)
    renamed = doc("connections", "update", conn["id"], "--name", "Production")
    assert renamed["name"] == "Production"
    assert renamed["base_url"] == conn["base_url"]
    assert renamed["requests_per_second"] == conn["requests_per_second"]
    slower = doc("connections", "update", conn["id"], "--requests-per-second", "5")
    assert slower["requests_per_second"] == 5
    assert slower["name"] == "Production"
    # The same URL spelled with a trailing slash is the same URL: no live check needed.
    same = doc("connections", "update", conn["id"], "--base-url", sandbox.url)
    assert same["base_url"] == conn["base_url"]

    for args, field in (
        (("--requests-per-second", "0"), "--requests-per-second: "),
        (("--name", "   "), "--name: "),
        (("--base-url", "ftp://example.com"), "--base-url: "),
        # Nothing answers there (the key comes with a new URL).
        (("--base-url", "http://127.0.0.1:9", "--api-key-env", "HW_KEY"), "http://127.0.0.1:9"),
        # A new URL without a key: the saved key is never sent there.
        (("--base-url", "http://127.0.0.1:9"), "api_key"),
        # A key given without a new URL was ignored without a word (the change looked
        # done): it is refused, pointing at rotate-key, and nothing else changes.
        (("--name", "Other", "--api-key-env", "HW_KEY"), "rotate-key"),
        (("--base-url", sandbox.url + "/", "--api-key-env", "HW_KEY"), "rotate-key"),
    ):
        bad = invoke("connections", "update", conn["id"], *args)
        assert bad.exit_code == 1, (args, bad.output)
        assert field in bad.stderr, (args, bad.stderr)
    assert doc("connections", "show", conn["id"]) == slower  # nothing changed
    nothing = invoke("connections", "update", conn["id"])
    assert nothing.exit_code == 2
    assert "--name, --base-url or --requests-per-second" in nothing.stderr
    text = invoke("connections", "update", conn["id"], "--name", "Renamed")
    assert text.exit_code == 0
    assert "Renamed" in text.stdout


def test_another_workspaces_connection_cannot_be_changed(
    home: Path, sandbox: RunningSandbox
) -> None:
    conn = _add(sandbox)
    app = App.open(settings_from_env())
    try:
        other = workspaces.add_workspace(app, "Acme").id
    finally:
        app.close()
    for args, stdin in (
        (("update", conn["id"], "--name", "theirs"), None),
        (("rotate-key", conn["id"]), "sk_test_sandbox\n"),
    ):
        refused = invoke("--workspace", other, "connections", *args, stdin=stdin)
        assert refused.exit_code == 1
        assert f"no connection with id {conn['id']!r}" in refused.stderr
    assert doc("connections", "show", conn["id"])["name"] == "Sandbox"
