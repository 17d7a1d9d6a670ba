"""Stripe's webhook endpoints: create one for Headwater's receiver, ask its status,
delete it.

A one-off administrative call, not a read: it uses its own short-lived client with the
pinned API version, retries what Stripe says is transient (the create carries an
``Idempotency-Key``, so a retried create never makes two endpoints) and maps the
answer to the connector's typed errors.  A restricted key needs Webhook Endpoints:
Write; without it `PermissionMissing` names that permission.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import httpx

from headwater.adapters.connectors.contract import PermissionMissing
from headwater.adapters.connectors.stripe.declaration import STRIPE, Action
from headwater.adapters.connectors.stripe.errors import (
    ApiFailure,
    InvalidKey,
    RetriesExhausted,
    SourceUnreachable,
    StripeRequestFailed,
)
from headwater.adapters.connectors.stripe.pagination import json_object
from headwater.adapters.connectors.stripe.retry import RetryPolicy

WRITE_PERMISSION = "Webhook Endpoints: Write"
CUSTOMER_EVENTS = ("customer.created", "customer.updated", "customer.deleted")


@dataclass(frozen=True)
class CreatedEndpoint:
    """What Stripe answered: the endpoint's id and its signing secret (shown once)."""

    id: str
    secret: str
    url: str


def create_endpoint(
    base_url: str, api_key: str, url: str, *, timeout: float = 15.0, retries: int = 3
) -> CreatedEndpoint:
    """Create an endpoint at `url` for the customer events, pinned to our API version."""
    form = [("url", url), ("api_version", STRIPE.api_version)]
    form += [("enabled_events[]", event) for event in CUSTOMER_EVENTS]
    form.append(("description", "Headwater: near-real-time customer imports"))
    body = _call(
        base_url,
        api_key,
        "POST",
        "/v1/webhook_endpoints",
        form,
        timeout,
        retries,
        str(uuid.uuid4()),
    )
    endpoint_id, secret = body.get("id"), body.get("secret")
    if not isinstance(endpoint_id, str) or not isinstance(secret, str):
        raise StripeRequestFailed(
            "Stripe created the webhook endpoint but sent no id or signing secret; delete it "
            "in the Dashboard and register again",
            ApiFailure(200, message="missing id or secret"),
        )
    return CreatedEndpoint(endpoint_id, secret, str(body.get("url") or url))


def delete_endpoint(
    base_url: str, api_key: str, endpoint_id: str, *, timeout: float = 15.0, retries: int = 3
) -> bool:
    """Delete the endpoint; False when Stripe no longer has it (deleted by hand)."""
    try:
        _call(
            base_url,
            api_key,
            "DELETE",
            f"/v1/webhook_endpoints/{endpoint_id}",
            [],
            timeout,
            retries,
        )
    except StripeRequestFailed as exc:
        if exc.failure.status == 404:
            return False
        raise
    return True


def endpoint_status(
    base_url: str, api_key: str, endpoint_id: str, *, timeout: float = 5.0, retries: int = 0
) -> str:
    """Stripe's status of the endpoint: ``enabled``, ``disabled`` (by hand, or by Stripe
    after deliveries kept failing: it sends nothing then) or ``deleted``."""
    try:
        body = _call(
            base_url, api_key, "GET", f"/v1/webhook_endpoints/{endpoint_id}", [], timeout, retries
        )
    except StripeRequestFailed as exc:
        if exc.failure.status == 404:
            return "deleted"
        raise
    return "disabled" if body.get("status") == "disabled" else "enabled"


def _call(
    base_url: str,
    api_key: str,
    method: str,
    path: str,
    form: list[tuple[str, str]],
    timeout: float,
    retries: int,
    idempotency_key: str | None = None,
) -> dict[str, object]:
    policy = RetryPolicy(max_retries=retries)
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Stripe-Version": STRIPE.api_version,
        "User-Agent": "headwater-stripe-connector",
    }
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    last: ApiFailure | None = None
    network: str | None = None
    with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout) as client:
        for attempt in range(1, retries + 2):
            try:
                response = client.request(method, path, data=dict(_group(form)))
            except httpx.TransportError as exc:
                network = f"{type(exc).__name__}: {exc}"
                time.sleep(policy.delay(attempt, {}))
                continue
            network = None
            action = policy.action(response.status_code, response.headers)
            if action is Action.OK:
                decoded = json_object(response.content)
                if decoded is not None:
                    return decoded
                action, last = Action.RETRY, ApiFailure(200, message="not a JSON object")
            else:
                last = _failure(response)
            if action is not Action.RETRY:
                raise _terminal(action, method, path, last)
            if attempt <= retries:
                time.sleep(policy.delay(attempt, response.headers))
    if network is not None:
        raise SourceUnreachable(
            f"Could not reach Stripe at {base_url} for {method} {path}: {network}",
            retries + 1,
            None,
        )
    detail = last.describe() if last else "unknown error"
    raise RetriesExhausted(
        f"Stripe {method} {path} kept failing: gave up after {retries + 1} attempts; "
        f"last error: {detail}",
        retries + 1,
        last,
    )


def _group(form: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    grouped: dict[str, str | list[str]] = {}
    for key, value in form:
        if key.endswith("[]"):
            listed = grouped.setdefault(key, [])
            assert isinstance(listed, list)
            listed.append(value)
        else:
            grouped[key] = value
    return grouped


def _failure(response: httpx.Response) -> ApiFailure:
    body = json_object(response.content) or {}
    error = body.get("error")
    request_id = response.headers.get("request-id")
    if not isinstance(error, dict):
        return ApiFailure(
            response.status_code, message=response.text[:200] or None, request_id=request_id
        )
    parts = [error.get(k) for k in ("type", "code", "message")]
    texts = [str(p) if p is not None else None for p in parts]
    return ApiFailure(response.status_code, texts[0], texts[1], texts[2], request_id)


def _terminal(action: Action, method: str, path: str, failure: ApiFailure) -> Exception:
    detail = failure.describe()
    if action is Action.INVALID_KEY:
        return InvalidKey(f"Stripe rejected the API key as invalid or revoked ({detail})", failure)
    permission = "permission" in (failure.message or "").lower()
    if action is Action.PERMISSION or (failure.type == "invalid_request_error" and permission):
        return PermissionMissing(
            f"The Stripe key lacks the '{WRITE_PERMISSION}' permission needed for "
            f"{method} {path} ({detail})",
            permission=WRITE_PERMISSION,
        )
    return StripeRequestFailed(f"Stripe refused {method} {path}: {detail}", failure)
