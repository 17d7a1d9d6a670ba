"""Secrets at rest: AES-GCM with a key from HEADWATER_SECRET_KEY or a 0600 key file."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from headwater.kernel.errors import TerminalError

KEY_FILE = "secret.key"
_PREFIX = "v1:"


class SecretKeyMismatch(TerminalError):
    """A stored secret cannot be decrypted with the configured key."""


class Cipher:
    """Encrypts and decrypts short secrets (API keys, webhook secrets, warehouse URLs)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the encryption key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_passphrase(cls, passphrase: str) -> Cipher:
        # Any string works as HEADWATER_SECRET_KEY; stretch it to 32 bytes.
        return cls(hashlib.sha256(passphrase.encode()).digest())

    @classmethod
    def from_settings(cls, secret_key: str | None, home: Path) -> Cipher:
        if secret_key:
            return cls.from_passphrase(secret_key)
        return cls(load_or_create_key_file(home / KEY_FILE))

    def encrypt(self, plaintext: str, context: str = "") -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, token: str, context: str = "") -> str:
        if not token.startswith(_PREFIX):
            raise SecretKeyMismatch("stored secret has an unknown format")
        raw = base64.urlsafe_b64decode(token[len(_PREFIX) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise SecretKeyMismatch(
                "a stored secret cannot be decrypted: HEADWATER_SECRET_KEY (or the key file) "
                "changed since it was saved"
            ) from None


def is_encrypted(value: str) -> bool:
    """Whether `value` is a token of `Cipher.encrypt` (not a plain secret)."""
    return value.startswith(_PREFIX)


def warehouse_url_context(workspace_id: str) -> str:
    """What a workspace's warehouse URL is bound to when encrypted (its row)."""
    return f"warehouse_url:{workspace_id}"


def load_or_create_key_file(path: Path) -> bytes:
    """Read the key file, creating it atomically with mode 0600 on first start.

    A key file that anyone but its owner may read or write is refused (as ssh refuses a
    private key), and so is a corrupt one; both errors name the file and the way out.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key_file(path)
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as handle:
        handle.write(base64.urlsafe_b64encode(key) + b"\n")
    return key


def _read_key_file(path: Path) -> bytes:
    with path.open("rb") as handle:
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
        if mode & 0o077:
            raise TerminalError(
                f"key file {path} has mode {mode:04o}: other users may read the key that "
                f"encrypts your secrets; make it private with `chmod 600 {path}`"
            )
        data = handle.read().strip()
    try:
        key = base64.b64decode(data, altchars=b"-_", validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32:
        raise TerminalError(
            f"key file {path} is corrupt: it must hold 32 random bytes in URL-safe base64 "
            f"(it holds {len(data)} characters that do not decode to them); restore it from "
            "a backup, or set HEADWATER_SECRET_KEY to the passphrase you used instead"
        )
    return key
