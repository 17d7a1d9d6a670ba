"""What the Stripe connector is, as data: API version, limits, retry policy, settings.

The read code consults this declaration instead of hard-coding numbers, so the limits
and the retry behaviour can be reviewed (and shown in the console) in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from headwater.kernel.errors import InvalidInput


class Action(StrEnum):
    """What the HTTP client does with a response status."""

    OK = "ok"
    RETRY = "retry"  # transient: back off and try again (bounded)
    INVALID_KEY = "invalid_key"  # 401: the key is wrong or revoked
    PERMISSION = "permission"  # 403: a restricted key lacks a permission
    FAIL = "fail"  # any other 4xx: retrying cannot help


@dataclass(frozen=True)
class Declaration:
    """The Stripe connector's declaration (CONVENTIONS item 2)."""

    name: str
    api_version: str
    key_prefixes: tuple[str, ...]
    #: Stripe's documented limits in requests/second; our budget must stay below them
    #: because the merchant's own traffic shares them.
    rate_limits: dict[str, dict[str, float]]
    #: HTTP status -> action; statuses not listed fall back to `default_action`.
    retry_policy: dict[int, Action]
    #: Which permission a restricted key needs for each endpoint path.
    permissions: dict[str, str]
    #: JSON Schema of the connection settings (without the key, which is a secret).
    settings_schema: dict[str, Any]
    event_types: tuple[str, ...]
    event_history_seconds: int
    page_size: int = 100

    def action_for(self, status: int) -> Action:
        if status in self.retry_policy:
            return self.retry_policy[status]
        if 200 <= status < 300:
            return Action.OK
        if status >= 500:
            return Action.RETRY
        return Action.FAIL

    def permission_for(self, path: str) -> str:
        for prefix, permission in self.permissions.items():
            if path.startswith(prefix):
                return permission
        return f"access to {path}"


STRIPE = Declaration(
    name="stripe",
    api_version="2024-06-20",
    key_prefixes=("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
    rate_limits={
        "live": {"global": 100.0, "per_endpoint": 25.0},
        "test": {"global": 25.0, "per_endpoint": 25.0},
    },
    retry_policy={
        401: Action.INVALID_KEY,
        403: Action.PERMISSION,
        408: Action.RETRY,
        409: Action.RETRY,  # lock_timeout; Stripe-Should-Retry refines it
        429: Action.RETRY,
        500: Action.RETRY,
        502: Action.RETRY,
        503: Action.RETRY,
        504: Action.RETRY,
    },
    permissions={"/v1/customers": "Customers: Read", "/v1/events": "Events: Read"},
    settings_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "base_url": {"type": "string", "format": "uri", "default": "https://api.stripe.com"},
            "requests_per_second": {
                "type": "number",
                "minimum": 0.1,
                "maximum": 1000,
                "default": 20.0,
                "description": "Budget shared by all threads of one connection; Stripe's "
                "limits (100 live, 25 test) are shared with the merchant's own traffic. "
                "Budgets above them only make sense against a private endpoint.",
            },
            "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 30.0},
            "workers": {
                "type": "integer",
                "minimum": 1,
                "maximum": 64,
                "default": 20,
                "description": "The most requests in flight at once (a full read adapts "
                "below it, to what the budget and the observed latency need).",
            },
        },
    },
    event_types=("customer.created", "customer.updated", "customer.deleted"),
    event_history_seconds=30 * 86400,
)


@dataclass
class StripeSettings:
    """Settings of one Stripe connection; validated on construction."""

    base_url: str = "https://api.stripe.com"
    api_key: str = field(default="", repr=False)
    requests_per_second: float = 20.0
    timeout: float = 30.0
    max_retries: int = 6
    #: Of those, how many may follow a failure to reach Stripe at all (refused, unknown
    #: host, timeout); None: as many.  A check a person waits for keeps it short.
    network_retries: int | None = None
    #: The most requests in flight at once (reader threads): a cap, not a target.
    workers: int = 20
    page_size: int = 100
    backoff_base: float = 0.5
    backoff_cap: float = 20.0
    #: Oldest `created` second a full read looks at (Stripe started in 2011).
    created_lower_bound: int = 0
    #: A file through which the request budgets of every process reading this
    #: connection are one (`ratelimit.RequestBudget`); None: this client's own.
    budget_file: str | None = None
    #: The proxy through which Stripe is reached (`Settings.proxy_for`); None: directly.
    proxy: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise InvalidInput("must start with http:// or https://", "base_url")
        if self.proxy is not None and not self.proxy.lower().startswith(("http://", "https://")):
            raise InvalidInput("must start with http:// or https://", "proxy")
        positive = {
            "requests_per_second": self.requests_per_second,
            "timeout": self.timeout,
            "backoff_cap": self.backoff_cap,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise InvalidInput(f"must be a positive number, got {value!r}", name)
        if self.backoff_base < 0 or not math.isfinite(self.backoff_base):
            raise InvalidInput(f"must be >= 0, got {self.backoff_base!r}", "backoff_base")
        if self.max_retries < 0:
            raise InvalidInput(f"must be >= 0, got {self.max_retries!r}", "max_retries")
        if self.network_retries is not None and self.network_retries < 0:
            raise InvalidInput(f"must be >= 0, got {self.network_retries!r}", "network_retries")
        if not 1 <= self.workers <= 64:
            raise InvalidInput(f"must be between 1 and 64, got {self.workers!r}", "workers")
        if not 1 <= self.page_size <= 100:
            raise InvalidInput(f"must be between 1 and 100, got {self.page_size!r}", "page_size")
