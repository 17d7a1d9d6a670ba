"""Secrets at rest: the key file is created private and refused when it is not."""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from headwater.adapters.store.crypto import KEY_FILE, Cipher, SecretKeyMismatch
from headwater.entrypoints.cli.commands import cli
from headwater.kernel.errors import TerminalError


def test_the_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    first = Cipher.from_settings(None, tmp_path)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = first.encrypt("sk_test_secret", context="conn_1")
    assert Cipher.from_settings(None, tmp_path).decrypt(token, context="conn_1") == "sk_test_secret"
    with pytest.raises(SecretKeyMismatch):
        Cipher.from_passphrase("another").decrypt(token, context="conn_1")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    Cipher.from_settings(None, tmp_path)
    path = tmp_path / KEY_FILE
    path.chmod(mode)
    with pytest.raises(TerminalError) as raised:
        Cipher.from_settings(None, tmp_path)
    message = raised.value.message
    assert str(path) in message
    assert f"mode {mode:04o}" in message
    assert f"chmod 600 {path}" in message


@pytest.mark.parametrize(
    "content",
    [b"not base64 at all!\n", b"abc\n", base64.urlsafe_b64encode(secrets.token_bytes(16)), b""],
    ids=["not-base64", "bad-padding", "too-short", "empty"],
)
def test_a_corrupt_key_file_is_named_and_explained(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / KEY_FILE
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(TerminalError) as raised:
        Cipher.from_settings(None, tmp_path)
    message = raised.value.message
    assert message.startswith(f"key file {path} is corrupt")
    assert "Incorrect padding" not in message
    assert "HEADWATER_SECRET_KEY" in message  # how to get going again


def test_the_cli_names_the_key_file_in_one_line(home: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["connections", "list"]).exit_code == 0
    path = home / KEY_FILE
    path.chmod(0o644)
    refused = runner.invoke(cli, ["connections", "list"])
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"error: key file {path} has mode 0644")
    assert refused.stderr.count("\n") == 1  # one line, no traceback
    path.chmod(0o600)
    path.write_text("abc\n")
    corrupt = runner.invoke(cli, ["connections", "list"])
    assert corrupt.exit_code == 1
    assert corrupt.stderr.startswith(f"error: key file {path} is corrupt")


def test_cipher_round_trip_and_key_file(tmp_path: Path) -> None:
    cipher = Cipher.from_settings(None, tmp_path)
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    token = cipher.encrypt("sk_test_abcdefgh1234", context="conn_1")
    assert "sk_test" not in token
    assert Cipher.from_settings(None, tmp_path).decrypt(token, "conn_1") == "sk_test_abcdefgh1234"
    with pytest.raises(SecretKeyMismatch):
        cipher.decrypt(token, "conn_2")  # bound to its connection
    with pytest.raises(SecretKeyMismatch, match="HEADWATER_SECRET_KEY"):
        Cipher.from_settings("another passphrase", tmp_path).decrypt(token, "conn_1")
