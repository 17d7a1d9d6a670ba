"""The API's dependencies: who is calling (`principal`) and the workspace they act on
(`workspace_app`). Every route but sign-in depends on `principal`, so every route
answers 401 without valid credentials.

Credentials are an ``Authorization: Bearer hw_…`` token or the ``headwater_session``
cookie; when both come, the token decides. A request that changes state (any method
but GET, HEAD and OPTIONS) carried by the cookie must come from the same origin as the
API: its ``Origin`` names this host, or the browser says ``Sec-Fetch-Site:
same-origin``; otherwise it is refused with 403 (a cross-site form or script cannot
use someone's session). Token requests need no such check: browsers never add a token
on their own.

`checked_input` (every route's, after `principal`) refuses text holding the NUL
character, in the path, the query or a JSON body, with a 422 naming where: no database
keeps it in text (PostgreSQL refuses it), so it was a 500 half way through a change.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated, Any, cast
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from headwater.kernel.errors import Forbidden, InvalidInput, Unauthenticated
from headwater.services.app import App
from headwater.services.auth import Principal, sessions, tokens

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token of one workspace: `Authorization: Bearer hw_…` "
    "(`headwater tokens create`, or `POST /tokens`).",
)
session_cookie = APIKeyCookie(
    name=sessions.COOKIE,
    auto_error=False,
    scheme_name="session",
    description="The session cookie set by `POST /auth/login` (HttpOnly, SameSite=Lax; "
    f"over https `{sessions.SECURE_COOKIE}`, Secure). "
    "A request that changes state with it must be same-origin.",
)


async def headwater_app(request: Request) -> App:
    """The `App` the API was created with (`create_api`), for the default workspace.
    (Dependencies without I/O are ``async``: FastAPI runs a plain ``def`` in a worker
    thread, a hop that costs more than they do.)"""
    return cast(App, request.app.state.headwater)


RootApp = Annotated[App, Depends(headwater_app)]


def _origin(scheme: str, netloc: str) -> tuple[str, str | None, int | None] | None:
    """(scheme, host, port) with the default port filled in; None when malformed."""
    parts = urlsplit(f"{scheme}://{netloc}")
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme.lower())
    except ValueError:
        return None
    return scheme.lower(), parts.hostname, port


def _over_https(request: Request) -> bool:
    return request.url.scheme == "https"


def session_cookie_name(request: Request) -> str:
    """The session cookie's name for this request: `sessions.SECURE_COOKIE` over https
    (only that name is a session there), `sessions.COOKIE` over plain http."""
    return sessions.SECURE_COOKIE if _over_https(request) else sessions.COOKIE


def session_from(request: Request) -> str | None:
    """The raw session the request's cookie carries, if any (`session_cookie_name`)."""
    return request.cookies.get(session_cookie_name(request)) or None


def set_session_cookie(response: Response, request: Request, raw: str) -> None:
    """Give the browser its session (the API's sign-in and the console's alike):
    HttpOnly, SameSite=Lax, for every path; over https Secure and host-only, by the
    ``__Host-`` name (`session_cookie_name`)."""
    response.set_cookie(
        session_cookie_name(request),
        raw,
        max_age=int(sessions.LIFETIME.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_over_https(request),
    )


def forget_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        session_cookie_name(request),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_over_https(request),  # a __Host- cookie is only ever Secure
    )


def same_origin(request: Request) -> bool:
    """Whether the browser says the request comes from a page of this very origin."""
    if request.headers.get("sec-fetch-site") == "same-origin":
        return True
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    if not origin or not host or origin == "null":
        return False
    parts = urlsplit(origin)
    theirs = _origin(parts.scheme, parts.netloc)
    return theirs is not None and theirs == _origin(request.url.scheme, host)


def cross_site(request: Request) -> bool:
    """Whether the browser says the request comes from another site's page (a request
    without browser headers, such as curl's, is not)."""
    browser = "origin" in request.headers or "sec-fetch-site" in request.headers
    return browser and not same_origin(request)


async def principal(
    request: Request,
    app: RootApp,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    # Names the cookie scheme in the OpenAPI document; the session is read by the
    # request's own name for it (`session_from`: ``__Host-`` over https).
    _documented: Annotated[str | None, Depends(session_cookie)],
) -> Principal:
    """Who is calling: 401 when no credentials come or they are forged, expired or
    revoked; 403 for a cookie request that changes state from another origin.

    A token checked lately is known without I/O (`tokens.trusted_principal`), on the
    event loop; a store read (and write) goes through the thread pool."""
    if credentials is not None:
        raw = credentials.credentials
        found = tokens.trusted_principal(app, raw) or await run_in_threadpool(
            tokens.principal_for_token, app, raw
        )
        if found is None:
            raise Unauthenticated("the API token is not valid: unknown, malformed or revoked")
        return found
    if request.headers.get("authorization"):
        raise Unauthenticated("send an API token as `Authorization: Bearer hw_…`")
    if session := session_from(request):
        found = await run_in_threadpool(sessions.principal_for_session, app, session)
        if found is None:
            raise Unauthenticated("the session has expired or was signed out: sign in again")
        if request.method not in SAFE_METHODS and not same_origin(request):
            raise Forbidden("a request that changes something must come from this site's pages")
        return found
    raise Unauthenticated("sign in, or send an API token as `Authorization: Bearer hw_…`")


CurrentPrincipal = Annotated[Principal, Depends(principal)]


async def workspace_app(app: RootApp, caller: CurrentPrincipal) -> App:
    """The `App` of the caller's workspace: every service call of a route acts on it.
    (`async`, as `headwater_app`: no I/O here, so no trip through the thread pool.)"""
    if caller.workspace_id == app.workspace_id:
        return app
    return replace(app, workspace_id=caller.workspace_id)


WorkspaceApp = Annotated[App, Depends(workspace_app)]


NUL = "\x00"
_NUL_REFUSED = "text cannot hold the NUL character (\\u0000)"


def _nul_in(value: Any) -> str | None:
    """Where in a JSON value a string (or a key) holds NUL: ``""`` for the value
    itself, ``.name``, ``[0]``… below it; None when none does."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        at, item = stack.pop()
        if isinstance(item, str) and NUL in item:
            return at
        if isinstance(item, dict):
            for key, inner in item.items():
                if NUL in key:
                    return f"{at}.{key}"
                stack.append((f"{at}.{key}", inner))
        elif isinstance(item, list):
            stack.extend((f"{at}[{i}]", inner) for i, inner in enumerate(item))
    return None


async def refuse_nul(request: Request) -> None:
    """`InvalidInput` at the first path or query parameter, or place of the JSON body,
    holding the NUL character."""
    params = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in params:
        if isinstance(value, str) and NUL in value:
            raise InvalidInput(_NUL_REFUSED, name)
    if "json" not in request.headers.get("content-type", "json"):
        return
    try:
        body = await request.json() if await request.body() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return  # FastAPI has answered it already (the body is read before dependencies)
    at = _nul_in(body)
    if at is not None:
        raise InvalidInput(_NUL_REFUSED, at.removeprefix(".") or "body")


async def checked_input(request: Request, _caller: CurrentPrincipal) -> None:
    """`refuse_nul` once the caller is known (a 401 comes before any 422)."""
    await refuse_nul(request)


NoNul = Depends(refuse_nul)
CheckedInput = Depends(checked_input)
