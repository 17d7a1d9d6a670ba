"""Reading and writing users, memberships, sessions, API tokens and sign-in attempts.

Plain functions of a SQLAlchemy engine, like `objects`. Secrets arrive here already
hashed (`secret_hash`): this module never sees a password, a session id or a token.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from headwater.adapters.store.auth_tables import (
    api_tokens,
    memberships,
    sessions,
    sign_in_attempts,
    users,
)
from headwater.adapters.store.objects import aware
from headwater.adapters.store.tables import workspaces
from headwater.kernel.accounts import ApiToken, Session, User
from headwater.kernel.entities import new_id
from headwater.kernel.errors import Conflict, InvalidInput, NotFound

# A token's `last_used_at` is refreshed at most this often: a write per request would
# make every read of the API a write to the store.
TOUCH_EVERY = timedelta(seconds=60)


def _user(row: Any) -> User:
    return User(row.id, row.email, row.password_hash, aware(row.created_at))  # type: ignore[arg-type]


def _session(row: Any) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        workspace_id=row.workspace_id,
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        expires_at=aware(row.expires_at),  # type: ignore[arg-type]
        revoked_at=aware(row.revoked_at),
    )


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        prefix=row.prefix,
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        last_used_at=aware(row.last_used_at),
        revoked_at=aware(row.revoked_at),
    )


# Users and memberships


def add_user(engine: Engine, user: User, email_key: str, workspace_id: str) -> User:
    """Insert `user` as a member of `workspace_id`; Conflict if the email is taken."""
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(users).values(
                    id=user.id,
                    email=user.email,
                    email_key=email_key,
                    password_hash=user.password_hash,
                    created_at=user.created_at,
                )
            )
            conn.execute(
                insert(memberships).values(
                    user_id=user.id, workspace_id=workspace_id, created_at=user.created_at
                )
            )
    except IntegrityError as exc:
        raise Conflict(f"a user with the email {user.email!r} already exists") from exc
    return user


def user_by_email(engine: Engine, email_key: str) -> User | None:
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.email_key == email_key)).first()
    return None if row is None else _user(row)


def get_user(engine: Engine, user_id: str) -> User:
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"no user with id {user_id!r}")
    return _user(row)


def set_password_hash(
    engine: Engine, user_id: str, password_hash: str, *, sessions_end: datetime | None = None
) -> None:
    """Store the user's password hash; with `sessions_end` (a new password), end their
    sessions in the same transaction: one opened with the old password must not
    outlive it.  (A hash upgraded on sign-in keeps them.)"""
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))
        if sessions_end is not None:
            conn.execute(
                update(sessions)
                .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
                .values(revoked_at=sessions_end)
            )


def add_workspace(engine: Engine, row: dict[str, Any], member_id: str | None) -> bool:
    """Insert the workspace `row`, and `member_id`'s membership of it, unless a workspace
    of the same name (trimmed, any case) is visible to whoever adds it: the member's own
    workspaces, or every workspace for the operator (no member).  False if one is.

    Names are not unique across the installation: a 409 must not tell a user that
    another tenant has a workspace by that name."""
    same = select(workspaces.c.id).where(func.lower(workspaces.c.name) == row["name"].lower())
    if member_id is not None:
        same = same.join(memberships, memberships.c.workspace_id == workspaces.c.id).where(
            memberships.c.user_id == member_id
        )
    with engine.begin() as conn:
        if conn.execute(same.limit(1)).first() is not None:
            return False
        conn.execute(insert(workspaces).values(**row))
        if member_id is not None:
            conn.execute(
                insert(memberships).values(
                    user_id=member_id, workspace_id=row["id"], created_at=row["created_at"]
                )
            )
    return True


def members_of(engine: Engine, workspace_id: str) -> list[tuple[User, datetime]]:
    """The workspace's members and when each became one, oldest membership first."""
    query = (
        select(users, memberships.c.created_at.label("since"))
        .join(memberships, memberships.c.user_id == users.c.id)
        .where(memberships.c.workspace_id == workspace_id)
        .order_by(memberships.c.created_at, users.c.id)
    )
    with engine.connect() as conn:
        return [(_user(row), aware(row.since)) for row in conn.execute(query)]  # type: ignore[misc]


def workspace_ids_of(engine: Engine, user_id: str) -> list[str]:
    """The workspaces the user belongs to, oldest membership first."""
    query = (
        select(memberships.c.workspace_id)
        .where(memberships.c.user_id == user_id)
        .order_by(memberships.c.created_at, memberships.c.workspace_id)
    )
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


# Sessions


def add_session(engine: Engine, session: Session, secret_hash: str) -> Session:
    with engine.begin() as conn:
        conn.execute(
            insert(sessions).values(
                id=session.id,
                secret_hash=secret_hash,
                user_id=session.user_id,
                workspace_id=session.workspace_id,
                created_at=session.created_at,
                expires_at=session.expires_at,
                revoked_at=None,
            )
        )
    return session


def session_by_hash(engine: Engine, secret_hash: str) -> Session | None:
    with engine.connect() as conn:
        row = conn.execute(select(sessions).where(sessions.c.secret_hash == secret_hash)).first()
    return None if row is None else _session(row)


def revoke_session(engine: Engine, session_id: str, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(sessions)
            .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )


def set_session_workspace(engine: Engine, session_id: str, workspace_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(sessions).where(sessions.c.id == session_id).values(workspace_id=workspace_id)
        )


# API tokens


def add_token(engine: Engine, token: ApiToken, secret_hash: str) -> ApiToken:
    with engine.begin() as conn:
        conn.execute(
            insert(api_tokens).values(
                id=token.id,
                secret_hash=secret_hash,
                workspace_id=token.workspace_id,
                name=token.name,
                prefix=token.prefix,
                created_at=token.created_at,
                last_used_at=None,
                revoked_at=None,
            )
        )
    return token


def token_by_hash(engine: Engine, secret_hash: str) -> ApiToken | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(api_tokens).where(api_tokens.c.secret_hash == secret_hash)
        ).first()
    return None if row is None else _token(row)


def get_token(engine: Engine, token_id: str, workspace_id: str) -> ApiToken:
    """The workspace's token `token_id`; another workspace's is NotFound like a missing one."""
    query = select(api_tokens).where(
        api_tokens.c.id == token_id, api_tokens.c.workspace_id == workspace_id
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no token with id {token_id!r}")
    return _token(row)


def list_tokens(
    engine: Engine, workspace_id: str, limit: int, starting_after: str | None = None
) -> tuple[list[ApiToken], bool]:
    """The workspace's tokens, newest first, after `starting_after` (a token id of
    this workspace, else `InvalidInput` at ``starting_after``); and whether more follow."""
    order = (api_tokens.c.created_at.desc(), api_tokens.c.id.desc())
    query = select(api_tokens).where(api_tokens.c.workspace_id == workspace_id)
    if starting_after is not None:
        try:
            after = get_token(engine, starting_after, workspace_id)
        except NotFound:
            raise InvalidInput(
                f"no token with id {starting_after!r} in this list", "starting_after"
            ) from None
        query = query.where(
            or_(
                api_tokens.c.created_at < after.created_at,
                and_(api_tokens.c.created_at == after.created_at, api_tokens.c.id < after.id),
            )
        )
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(*order).limit(limit + 1)).all()
    return [_token(row) for row in rows[:limit]], len(rows) > limit


def revoke_token(engine: Engine, token_id: str, workspace_id: str, at: datetime) -> ApiToken:
    """Revoke the token (a revoked one stays as it was); NotFound outside the workspace."""
    with engine.begin() as conn:
        conn.execute(
            update(api_tokens)
            .where(
                api_tokens.c.id == token_id,
                api_tokens.c.workspace_id == workspace_id,
                api_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=at)
        )
    return get_token(engine, token_id, workspace_id)


def touch_token(engine: Engine, token: ApiToken, at: datetime) -> None:
    """Record that the token was used at `at`, at most once per `TOUCH_EVERY`."""
    if token.last_used_at is not None and at - token.last_used_at < TOUCH_EVERY:
        return
    with engine.begin() as conn:
        conn.execute(update(api_tokens).where(api_tokens.c.id == token.id).values(last_used_at=at))


# Sign-in attempts


def record_attempt(
    engine: Engine,
    email_key: str,
    address: str,
    succeeded: bool,
    at: datetime,
    keep: timedelta,
    keep_successes: timedelta | None = None,
) -> str:
    """Record one sign-in attempt (its id), and forget this account's and this
    address's failures older than `keep` and successes older than `keep_successes`
    (by default `keep` too)."""
    attempt_id = new_id("att")
    with engine.begin() as conn:
        attempts = sign_in_attempts.c
        cutoff, success_cutoff = at - keep, at - (keep_successes or keep)
        old = or_(
            and_(attempts.succeeded.is_(False), attempts.at < cutoff),
            attempts.at < success_cutoff,
        )
        conn.execute(delete(sign_in_attempts).where(attempts.email_key == email_key, old))
        conn.execute(delete(sign_in_attempts).where(attempts.address == address, old))
        conn.execute(
            insert(sign_in_attempts).values(
                id=attempt_id, email_key=email_key, address=address, succeeded=succeeded, at=at
            )
        )
    return attempt_id


def settle_attempt(engine: Engine, attempt_id: str, succeeded: bool | None) -> None:
    """An attempt recorded as failed before its password was checked: mark it
    succeeded, or forget it (None: it was refused without a check)."""
    with engine.begin() as conn:
        if succeeded is None:
            conn.execute(delete(sign_in_attempts).where(sign_in_attempts.c.id == attempt_id))
        elif succeeded:
            conn.execute(
                update(sign_in_attempts)
                .where(sign_in_attempts.c.id == attempt_id)
                .values(succeeded=True)
            )


def failures_since(
    engine: Engine,
    since: datetime,
    *,
    email_key: str | None = None,
    address: str | None = None,
    besides: str | None = None,
) -> list[datetime]:
    """When the failed attempts since `since` were made, oldest first: for one account
    (counting only those after its last success, from anywhere), for one address, or
    for one account from one address; not counting the attempt `besides`."""
    attempts = sign_in_attempts.c
    account = attempts.email_key == email_key
    given = ((email_key, account), (address, attempts.address == address))
    mine = [condition for value, condition in given if value is not None]
    if not mine:
        raise ValueError("failures of what: give an email_key, an address or both")
    key = and_(*mine)
    with engine.connect() as conn:
        if email_key is not None:  # the account's last success, from anywhere
            success = conn.execute(
                select(attempts.at)
                .where(account, attempts.succeeded.is_(True), attempts.at >= since)
                .order_by(attempts.at.desc())
                .limit(1)
            ).scalar()
            since = max(since, aware(success) or since)
        query = (
            select(attempts.at)
            .where(key, attempts.succeeded.is_(False), attempts.at > since)
            .order_by(attempts.at)
        )
        if besides is not None:
            query = query.where(attempts.id != besides)
        return [aware(at) for at in conn.execute(query).scalars()]  # type: ignore[misc]


def signed_in_from(engine: Engine, email_key: str, address: str, since: datetime) -> bool:
    """Whether the account signed in successfully from `address` since `since`."""
    attempts = sign_in_attempts.c
    query = select(attempts.id).where(
        attempts.email_key == email_key,
        attempts.address == address,
        attempts.succeeded.is_(True),
        attempts.at >= since,
    )
    with engine.connect() as conn:
        return conn.execute(query.limit(1)).first() is not None
