"""Stripe's paths mapped to sandbox operations, with the permission each needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from headwater.sandbox.config import API_VERSION
from headwater.sandbox.customers import check_expand
from headwater.sandbox.errors import ApiError, invalid, no_such, unknown_parameter
from headwater.sandbox.events import type_matcher
from headwater.sandbox.forms import parse_form
from headwater.sandbox.pages import CreatedRange, parse_limit
from headwater.sandbox.service import Sandbox


@dataclass
class Request:
    method: str
    path: str
    query: bytes
    body: bytes
    headers: dict[str, str]
    request_id: str

    def params(self) -> dict[str, Any]:
        return parse_form(self.query if self.method in ("GET", "DELETE") else self.body)


@dataclass
class Response:
    """An answer; `objects` is how many Stripe objects it returns (it prices latency)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    objects: int = 1

    @classmethod
    def error(cls, error: ApiError) -> Response:
        return cls(error.status, error.body(), error.headers, objects=0)


Handler = Callable[[Sandbox, Request], Response]


@dataclass(frozen=True)
class Match:
    name: str
    permission: str | None
    call: Handler


def _list_body(blobs: list[bytes], has_more: bool, url: bytes) -> bytes:
    more = b"true" if has_more else b"false"
    return b"".join(
        (
            b'{"object":"list","data":[',
            b",".join(blobs),
            b'],"has_more":',
            more,
            b',"url":"',
            url,
            b'"}',
        )
    )


def _check(params: dict[str, Any], allowed: frozenset[str]) -> None:
    for name in params:
        if name not in allowed:
            raise unknown_parameter(name)
    check_expand(params)


def _cursor(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise invalid(f"Invalid {name}: must be an object id", param=name)
    return value


_CUSTOMER_LIST = frozenset(
    {"limit", "starting_after", "ending_before", "created", "email", "expand", "test_clock"}
)
_EVENT_LIST = frozenset(
    {
        "limit",
        "starting_after",
        "ending_before",
        "created",
        "type",
        "types",
        "delivery_success",
        "expand",
    }
)


def list_customers(sandbox: Sandbox, request: Request) -> Response:
    params = request.params()
    _check(params, _CUSTOMER_LIST)
    email = params.get("email")
    if email is not None and not isinstance(email, str):
        raise invalid("Invalid string", param="email")
    blobs, has_more = sandbox.customers.page(
        CreatedRange.parse(params.get("created")),
        parse_limit(params.get("limit")),
        _cursor(params, "starting_after"),
        _cursor(params, "ending_before"),
        email,
    )
    return Response(200, _list_body(blobs, has_more, b"/v1/customers"), objects=len(blobs))


def list_events(sandbox: Sandbox, request: Request) -> Response:
    params = request.params()
    _check(params, _EVENT_LIST)
    blobs, has_more = sandbox.events.page(
        sandbox.clock.now(),
        CreatedRange.parse(params.get("created")),
        parse_limit(params.get("limit")),
        type_matcher(params.get("type"), params.get("types")),
        _cursor(params, "starting_after"),
        _cursor(params, "ending_before"),
    )
    return Response(200, _list_body(blobs, has_more, b"/v1/events"), objects=len(blobs))


def _object_id(request: Request) -> str:
    return request.path.rsplit("/", 1)[1]


def retrieve_event(sandbox: Sandbox, request: Request) -> Response:
    event_id = _object_id(request)
    event = sandbox.events.get(event_id, sandbox.clock.now())
    if event is None:
        raise no_such("event", event_id)
    return Response(200, event.blob)


def _not_found(_sandbox: Sandbox, request: Request) -> Response:
    raise ApiError(
        404,
        f"Unrecognized request URL ({request.method}: {request.path}). Please see "
        "https://stripe.com/docs or we can help at https://support.stripe.com/.",
    )


def _webhook_create(sandbox: Sandbox, request: Request) -> Response:
    params = request.params()
    _check(
        params,
        frozenset(
            {"url", "enabled_events", "secret", "description", "metadata", "api_version", "expand"}
        ),
    )
    url, events = params.get("url"), params.get("enabled_events")
    if not isinstance(url, str):
        raise invalid("Missing required param: url.", param="url")
    if not isinstance(events, list):
        raise invalid("Missing required param: enabled_events.", param="enabled_events")
    secret, version = params.get("secret"), params.get("api_version")
    if version is not None and version != API_VERSION:
        # Stripe accepts any of its versions; the sandbox speaks only the one it renders.
        raise invalid(f"Invalid API version: {version}", param="api_version")
    endpoint = sandbox.webhooks.register(
        url,
        events,
        sandbox.clock.now(),
        secret if isinstance(secret, str) else None,
        version,
    )
    return Response(200, orjson.dumps(endpoint.public(with_secret=True)))


def _webhook_get(sandbox: Sandbox, request: Request) -> Response:
    _check(request.params(), frozenset({"expand"}))
    return Response(200, orjson.dumps(sandbox.webhooks.get(_object_id(request)).public()))


def _webhook_update(sandbox: Sandbox, request: Request) -> Response:
    params = request.params()
    _check(params, frozenset({"url", "enabled_events", "disabled", "description", "metadata"}))
    url, events, disabled = params.get("url"), params.get("enabled_events"), params.get("disabled")
    if url is not None and not isinstance(url, str):
        raise invalid("Invalid string", param="url")
    if events is not None and not isinstance(events, list):
        raise invalid("Invalid array", param="enabled_events")
    if disabled not in (None, "true", "false"):
        raise invalid("Invalid boolean", param="disabled")
    flag = None if disabled is None else disabled == "true"
    endpoint = sandbox.webhooks.update(_object_id(request), url, events, flag)
    return Response(200, orjson.dumps(endpoint.public()))


def _webhook_list(sandbox: Sandbox, _request: Request) -> Response:
    data = [orjson.dumps(e.public()) for e in sandbox.webhooks.endpoints.values()]
    body = _list_body(data, False, b"/v1/webhook_endpoints")
    return Response(200, body, objects=len(data))


def _webhook_delete(sandbox: Sandbox, request: Request) -> Response:
    endpoint_id = _object_id(request)
    sandbox.webhooks.remove(endpoint_id)
    body = {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}
    return Response(200, orjson.dumps(body))


def _account(sandbox: Sandbox, request: Request) -> Response:
    """The account the key belongs to (any valid key of it may read its id)."""
    _check(request.params(), frozenset({"expand"}))
    body = {"id": sandbox.config.account, "object": "account", "type": "standard"}
    return Response(200, orjson.dumps(body))


_COLLECTIONS: dict[tuple[str, str], Match] = {
    ("GET", "account"): Match("GET /v1/account", None, _account),
    ("GET", "customers"): Match("GET /v1/customers", "customers:read", list_customers),
    ("POST", "customers"): Match(
        "POST /v1/customers",
        "customers:write",
        lambda s, r: Response(200, s.create(r.params(), r.request_id)),
    ),
    ("GET", "events"): Match("GET /v1/events", "events:read", list_events),
    ("GET", "webhook_endpoints"): Match(
        "GET /v1/webhook_endpoints", "webhooks:read", _webhook_list
    ),
    ("POST", "webhook_endpoints"): Match(
        "POST /v1/webhook_endpoints", "webhooks:write", _webhook_create
    ),
}


def _customer_get(s: Sandbox, r: Request) -> Response:
    _check(r.params(), frozenset({"expand"}))
    return Response(200, s.retrieve(_object_id(r)))


_OBJECTS: dict[tuple[str, str], Match] = {
    ("GET", "customers"): Match("GET /v1/customers/{id}", "customers:read", _customer_get),
    ("POST", "customers"): Match(
        "POST /v1/customers/{id}",
        "customers:write",
        lambda s, r: Response(200, s.update(_object_id(r), r.params(), r.request_id)),
    ),
    ("DELETE", "customers"): Match(
        "DELETE /v1/customers/{id}",
        "customers:write",
        lambda s, r: Response(200, s.delete(_object_id(r), r.request_id)),
    ),
    ("GET", "events"): Match("GET /v1/events/{id}", "events:read", retrieve_event),
    ("GET", "webhook_endpoints"): Match(
        "GET /v1/webhook_endpoints/{id}", "webhooks:read", _webhook_get
    ),
    ("POST", "webhook_endpoints"): Match(
        "POST /v1/webhook_endpoints/{id}", "webhooks:write", _webhook_update
    ),
    ("DELETE", "webhook_endpoints"): Match(
        "DELETE /v1/webhook_endpoints/{id}", "webhooks:write", _webhook_delete
    ),
}


def route(method: str, path: str) -> Match:
    """The operation for `method` and `path`; unknown paths answer Stripe's 404."""
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "v1":
        found = _COLLECTIONS.get((method, parts[1]))
    elif len(parts) == 3 and parts[0] == "v1" and parts[2]:
        found = _OBJECTS.get((method, parts[1]))
    else:
        found = None
    return found or Match("unrecognized", None, _not_found)
