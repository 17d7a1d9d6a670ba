"""Sandbox-only endpoints under ``/_sandbox/`` (see the package docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from headwater.sandbox.errors import ApiError, invalid
from headwater.sandbox.forms import parse_form
from headwater.sandbox.routes import Request, Response

if TYPE_CHECKING:
    from headwater.sandbox.app import SandboxApp


def _json_body(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return parse_form(request.body)
    try:
        data = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"Invalid JSON body: {exc}") from None
    if not isinstance(data, dict):
        raise invalid("The body must be a JSON object")
    return data


def _ok(data: Any) -> Response:
    return Response(200, orjson.dumps(data))


def handle(app: SandboxApp, request: Request) -> Response:
    """Dispatch one control request; errors come back in Stripe's shape."""
    try:
        return _dispatch(app, request)
    except ApiError as error:
        return Response.error(error)


def _dispatch(app: SandboxApp, request: Request) -> Response:
    sandbox = app.sandbox
    action = (request.method, request.path.rstrip("/"))
    if action == ("GET", "/_sandbox/control"):
        return _ok(app.knobs.as_dict())
    if action == ("POST", "/_sandbox/control"):
        try:
            app.knobs.update(_json_body(request))
        except (TypeError, ValueError) as exc:
            raise invalid(str(exc)) from None
        app.limits.configure()
        return _ok(app.knobs.as_dict())
    if action == ("GET", "/_sandbox/clock"):
        return _ok({"now": sandbox.clock.now(), "offset": sandbox.clock.offset})
    if action == ("POST", "/_sandbox/clock"):
        body = _json_body(request)
        try:
            sandbox.clock.advance(float(body.get("advance_seconds", 0)))
        except (TypeError, ValueError) as exc:
            raise invalid(f"advance_seconds: {exc}", param="advance_seconds") from None
        return _ok({"now": sandbox.clock.now(), "offset": sandbox.clock.offset})
    if action == ("GET", "/_sandbox/stats"):
        data = app.stats.as_dict()
        data.update(customers=len(sandbox.customers), events=len(sandbox.events))
        return _ok(data)
    if action == ("GET", "/_sandbox/stats/timeline"):
        return _ok({"timeline": app.stats.timeline_list()})
    if action == ("POST", "/_sandbox/stats/reset"):
        app.stats.reset()
        return _ok(app.stats.as_dict())
    if action == ("POST", "/_sandbox/snapshot"):
        from headwater.sandbox.snapshot import StateFileError, save

        path = app.config.state_file
        if not path:
            raise invalid("The sandbox was started without --state FILE")
        try:
            save(sandbox, path)
        except StateFileError as exc:
            raise ApiError(500, str(exc), type_="api_error") from None
        return _ok({"saved": path, "customers": len(sandbox.customers)})
    raise ApiError(404, f"Unrecognized sandbox control URL ({request.method}: {request.path})")
