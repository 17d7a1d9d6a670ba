"""User accounts: an email (unique whatever its case) and an argon2 password hash."""

from __future__ import annotations

import re

from pwdlib import PasswordHash

from headwater.adapters.store import accounts
from headwater.kernel.accounts import User
from headwater.kernel.entities import new_id, utcnow
from headwater.kernel.errors import InvalidInput
from headwater.services.app import App
from headwater.services.text import refuse_nul

MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; this bounds the work one request can ask for
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")

#: argon2id with pwdlib's recommended parameters.
hasher = PasswordHash.recommended()
#: Verified when the email is unknown, so that an unknown email takes as long to refuse
#: as a wrong password (no way to learn which emails have accounts by timing): the hash
#: of "not a password of anyone" with `hasher`'s parameters (tests check they match),
#: written down rather than made at import (0.19 s of every process's start).
DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$xlNXeQiJwSu1vJEHs0X4jg$"
    "jeNgoSobIcz6cEoGcOpSUgjKv5eRLx1gwcnPHtY+TUI"
)


def email_key(email: str) -> str:
    """The form an email is unique and looked up in: trimmed and lower-cased
    (`InvalidInput` at ``email`` when it holds the NUL character, which no store keeps)."""
    return refuse_nul(email, "email").strip().lower()


def checked_email(email: str) -> str:
    """`email` trimmed; `InvalidInput` at ``email`` unless it looks like one."""
    email = refuse_nul(email, "email").strip()
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise InvalidInput("must be an email address such as ada@example.com", "email")
    return email


def _checked_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"must be at least {MIN_PASSWORD} characters long", "password")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"must be at most {MAX_PASSWORD} characters long", "password")
    return password


def add_user(app: App, email: str, password: str) -> User:
    """Create a user who is a member of `app`'s workspace.

    Raises `InvalidInput` (field ``email`` or ``password``) for a malformed email or a
    password under 8 characters, and `Conflict` if the email has an account already.
    """
    email = checked_email(email)
    password_hash = hasher.hash(_checked_password(password))
    user = User(id=new_id("usr"), email=email, password_hash=password_hash, created_at=utcnow())
    return accounts.add_user(app.engine, user, email_key(email), app.workspace().id)


def get_user(app: App, user_id: str) -> User:
    """The user `user_id` (`NotFound` if there is none)."""
    return accounts.get_user(app.engine, user_id)


def authenticate(app: App, email: str, password: str) -> User | None:
    """The user with this email and password, or None; as slow for an unknown email as
    for a wrong password. A hash made with older parameters is upgraded on success."""
    user = accounts.user_by_email(app.engine, email_key(email))
    if user is None or len(password) > MAX_PASSWORD:
        hasher.verify("", DUMMY_HASH)
        return None
    valid, updated = hasher.verify_and_update(password, user.password_hash)
    if not valid:
        return None
    if updated is not None:
        accounts.set_password_hash(app.engine, user.id, updated)
        user.password_hash = updated
    return user


def set_password(app: App, email: str, password: str) -> User:
    """Give the existing user with `email` a new password, ending their sessions
    (`InvalidInput` for an unknown email, field ``email``, or a password under 8
    characters, field ``password``)."""
    user = accounts.user_by_email(app.engine, email_key(email))
    if user is None:
        raise InvalidInput(f"no user with the email {email.strip()!r}", "email")
    hashed = hasher.hash(_checked_password(password))
    accounts.set_password_hash(app.engine, user.id, hashed, sessions_end=utcnow())
    return user
