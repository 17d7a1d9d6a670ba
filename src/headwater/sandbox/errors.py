"""Stripe-shaped API errors raised by the sandbox's handlers."""

from __future__ import annotations

from typing import Any

import orjson

from headwater.kernel.errors import mask_secret


class ApiError(Exception):
    """An error answered as ``{"error": {"type", "code", "message", "param"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        error: dict[str, Any] = {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
        }
        return orjson.dumps({"error": error})


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 ``invalid_request_error``."""
    return ApiError(400, message, param=param, code=code)


def unknown_parameter(name: str) -> ApiError:
    return invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def no_such(kind: str, object_id: str, param: str | None = None) -> ApiError:
    status = 400 if param else 404
    return ApiError(
        status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param or "id"
    )


def unauthenticated(key: str | None) -> ApiError:
    if not key:
        message = (
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth "
            "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
        )
    else:
        message = f"Invalid API Key provided: {mask_secret(key)}"
    return ApiError(401, message, code="api_key_invalid" if key else None)


# Stripe's names for restricted-key permissions, and their dashboard labels.
PERMISSION_NAMES = {
    "customers:read": ("rak_customer_read", "Customers: Read"),
    "customers:write": ("rak_customer_write", "Customers: Write"),
    "events:read": ("rak_event_read", "Events: Read"),
    "webhooks:read": ("rak_webhook_read", "Webhook Endpoints: Read"),
    "webhooks:write": ("rak_webhook_write", "Webhook Endpoints: Write"),
}


def permission_denied(key: str, permission: str, account: str = "acct_1Headwater0000") -> ApiError:
    rak, label = PERMISSION_NAMES.get(permission, (permission, permission))
    message = (
        f"The provided key '{mask_secret(key)}' does not have the required permissions for "
        f"this endpoint on account '{account}'. Having the '{rak}' permission "
        f"({label}) would allow this request to continue."
    )
    return ApiError(403, message)
