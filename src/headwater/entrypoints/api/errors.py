"""Every API error as one document, ``{"error": {"type", "message", "field"}}``.

The kernel's errors map to statuses here and nowhere else: `InvalidInput` 422 (the
field of its first problem), `NotFound` 404, `Conflict` 409, `Unauthenticated` 401,
`Forbidden` 403, `RateLimited` 429 with ``Retry-After``, any other terminal error 400,
a transient one 503, with ``Retry-After`` too (`store_outage.RETRY_AFTER_SECONDS`). The
store's driver failing for want of the store (away, its connections dropped or
refused, a SQLite file locked too long) is that 503 too, `unavailable` naming the
metadata store (`store_outage`), wherever in the request it fails: checking the
caller's credentials as much as in a route. FastAPI's own
validation errors are 422 with the field at fault, an unknown path 404, an unexpected
exception 500 with no detail (the exception is logged, its secrets masked).

The 500 is answered by `CatchUnexpected`, a middleware, not by an exception handler:
Starlette answers a handler's 500 and then raises the exception again to the server,
which printed it whole (a key, a URL's password) and closed the connection, so a
client's next request on it failed.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Scope

from headwater.adapters.warehouse.staging import hide_password
from headwater.entrypoints.asgi_failures import AnswerFailures
from headwater.entrypoints.store_outage import RETRY_AFTER_SECONDS, retry_later, store_unavailable
from headwater.kernel.errors import (
    HeadwaterError,
    InvalidInput,
    RateLimited,
    Unauthenticated,
    error_type,
    redact,
)

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    type: str = Field(
        description="What kind of error: `invalid_input`, `not_found`, `conflict`, "
        "`unauthenticated`, `forbidden`, `rate_limited`, `bad_request`, `unavailable`, "
        "`method_not_allowed` or `internal`."
    )
    message: str = Field(description="What went wrong, for people; never holds a secret.")
    field: str | None = Field(
        description="The request field at fault (`name`, `mapping.email`, `limit`), or "
        "null when the error is not about one field."
    )


class ErrorDocument(BaseModel):
    """The body of every error response."""

    error: ErrorDetail = Field(description="The error.")


def _described(text: str) -> dict[str, Any]:
    return {"model": ErrorDocument, "description": text}


#: The error responses every route can give, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _described("The request cannot be carried out as asked."),
    401: _described("Missing, forged, expired or revoked credentials."),
    403: _described("Not allowed: e.g. a cross-site request carried by the session cookie."),
    404: _described("No such object in this workspace."),
    409: _described("The request conflicts with the current state."),
    422: _described("Invalid input; `field` names where."),
    429: _described("Too many attempts; `Retry-After` says in how many seconds to retry."),
    503: {
        **_described(
            "Something it needs (Stripe, the warehouse, the metadata store) cannot be "
            "reached now; `Retry-After` says in how many seconds to retry."
        ),
        "headers": {
            "Retry-After": {
                "description": f"Seconds to wait before retrying ({RETRY_AFTER_SECONDS}).",
                "schema": {"type": "integer"},
            }
        },
    },
}

#: The HTTP status of each error document type (`kernel.errors.error_type`).
_STATUS = {
    "invalid_input": 422,
    "not_found": 404,
    "conflict": 409,
    "unauthenticated": 401,
    "forbidden": 403,
    "rate_limited": 429,
    "unavailable": 503,
}
_METHODS = ("get", "put", "post", "delete", "patch", "options", "head")
_HTTP_TYPES = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_input",
    429: "rate_limited",
}


def error_response(
    status: int,
    kind: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"type": kind, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


def _headwater_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HeadwaterError)
    kind = error_type(exc)
    status = _STATUS.get(kind, 400)
    field = exc.location if isinstance(exc, InvalidInput) else None
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if status == 503:
        headers.update(retry_later())
    return error_response(status, kind, exc.message, field, headers)


def _store_failed(request: Request, exc: Exception) -> JSONResponse:
    """The store away: its `StoreUnavailable` (503); any other database error is a bug's,
    raised on to `CatchUnexpected` (500)."""
    failure = store_unavailable(exc, f"{request.method} {request.url.path}")
    if failure is None:
        raise exc
    return _headwater_error(request, failure)


def _field(loc: tuple[int | str, ...]) -> str | None:
    """`("body", "mapping", "email")` → ``mapping.email``; `("query", "limit")` → ``limit``."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or None


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":  # loc is ("body", character offset)
        loc = tuple(first.get("loc", ()))
        at = f" at character {loc[-1]}" if len(loc) == 2 else ""
        ctx = first.get("ctx")
        why = ctx.get("error", "malformed") if isinstance(ctx, dict) else "malformed"
        return error_response(422, "invalid_input", redact(f"the body is not JSON{at}: {why}"))
    field = _field(tuple(first.get("loc", ())))
    messages = [
        f"{_field(tuple(p.get('loc', ()))) or 'body'}: {p.get('msg', 'invalid')}" for p in problems
    ]
    return error_response(422, "invalid_input", redact("; ".join(messages)), field)


def _allowed_methods(request: Request) -> str:
    """Every method the API answers at this path, from its OpenAPI document (Starlette
    names only the first matching route's, so ``OPTIONS /tokens`` said ``Allow: GET``
    though POST works too)."""
    path, mounted_at = request.scope["path"], request.scope.get("root_path", "")
    path = path.removeprefix(mounted_at) if mounted_at else path
    methods: set[str] = set()
    for template, item in request.app.openapi()["paths"].items():
        if compile_path(template)[0].match(path):
            methods |= {m.upper() for m in item if m in _METHODS}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    kind = _HTTP_TYPES.get(exc.status_code, "bad_request")
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_response(exc.status_code, kind, message, None, headers)


def _log_unexpected(exc: BaseException) -> None:
    """One line with the exception's words masked, then where it happened (the frames'
    code, never their values)."""
    what = hide_password(redact(f"{type(exc).__name__}: {exc}"))
    where = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    log.error("unexpected error in the API: %s\n%s", what, where)


class CatchUnexpected(AnswerFailures):
    """ASGI middleware: an exception no handler took becomes the 500 `ErrorDocument`,
    logged masked, and goes no further (the server keeps the connection open)."""

    def failed(self, exc: Exception, _scope: Scope, started: bool) -> ASGIApp | None:
        _log_unexpected(exc)
        if started:  # half an answer went out: the server ends the connection
            return None
        return error_response(500, "internal", "an unexpected error happened; it was logged")


def install(api: FastAPI) -> None:
    """Render every error of `api` as an `ErrorDocument`."""
    api.add_exception_handler(HeadwaterError, _headwater_error)
    api.add_exception_handler(DBAPIError, _store_failed)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(HTTPException, _http_error)
    api.add_middleware(CatchUnexpected)
