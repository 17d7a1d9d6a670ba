"""Sandbox settings: keys and their permissions, fault knobs, data options."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

ALL_PERMISSIONS = frozenset(
    {"customers:read", "customers:write", "events:read", "webhooks:read", "webhooks:write"}
)

# Keys every sandbox accepts, with their permissions.
DEFAULT_KEYS: dict[str, frozenset[str]] = {
    "sk_test_sandbox": ALL_PERMISSIONS,
    "rk_test_customers_only": frozenset({"customers:read"}),
}

API_VERSION = "2024-06-20"
EVENT_RETENTION_SECONDS = 30 * 24 * 3600


def parse_permissions(text: str) -> frozenset[str]:
    """``customers:read,events:read`` (or ``*`` / ``all``) -> a permission set."""
    items = {p.strip() for p in text.split(",") if p.strip()}
    if items & {"*", "all"}:
        return ALL_PERMISSIONS
    expanded: set[str] = set()
    for item in items:
        resource, _, access = item.partition(":")
        if access == "write":  # write implies read, as in Stripe's dashboard
            expanded.add(f"{resource}:read")
        expanded.add(item)
    unknown = expanded - ALL_PERMISSIONS
    if unknown:
        known = ", ".join(sorted(ALL_PERMISSIONS))
        raise ValueError(f"unknown permission(s) {', '.join(sorted(unknown))}; known: {known}")
    return frozenset(expanded)


def parse_key_option(option: str) -> tuple[str, frozenset[str]]:
    """``KEY=PERMISSIONS`` -> (key, permissions); a bare ``sk_`` key gets everything."""
    key, sep, perms = option.partition("=")
    key = key.strip()
    if not key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
        raise ValueError("key must start with sk_test_, sk_live_, rk_test_ or rk_live_")
    if not sep:
        if key.startswith("rk_"):
            raise ValueError("a restricted key needs permissions: rk_...=customers:read,...")
        return key, ALL_PERMISSIONS
    return key, parse_permissions(perms)


def is_live(key: str) -> bool:
    return key.startswith(("sk_live_", "rk_live_"))


@dataclass
class Knobs:
    """Fault, latency and limit settings; all changeable at runtime.

    A rate or concurrency limit of 0 means unlimited.  ``*_rate`` knobs are fractions
    of requests in [0, 1]; ``*_ms`` knobs are milliseconds (see `headwater.sandbox.latency`
    for how the latency knobs add up).
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    latency_median_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_per_object_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit_error_rate: float = 0.0
    malformed_rate: float = 0.0
    rate_limit: float = 25.0
    live_rate_limit: float = 100.0
    endpoint_rate_limit: float = 25.0
    concurrency_limit: float = 0.0

    def update(self, changes: dict[str, Any]) -> None:
        """Apply `changes` all together, or none of them (ValueError says why)."""
        names = {f.name for f in fields(self)}
        numbers: dict[str, float] = {}
        for name, value in changes.items():
            if name not in names:
                raise ValueError(f"unknown knob {name!r}; known: {', '.join(sorted(names))}")
            number = float(value)
            if not math.isfinite(number) or number < 0 or (name.endswith("_rate") and number > 1):
                raise ValueError(f"{name} out of range: {value!r}")
            if name == "concurrency_limit" and not number.is_integer():
                raise ValueError(f"concurrency_limit must be a whole number: {value!r}")
            numbers[name] = number
        merged = {**self.as_dict(), **numbers}
        median, p99 = merged["latency_median_ms"], merged["latency_p99_ms"]
        if p99 and p99 < median:
            raise ValueError(
                f"latency_p99_ms ({p99:g}) must be at least latency_median_ms ({median:g})"
            )
        if p99 and not median:
            raise ValueError("latency_p99_ms needs latency_median_ms")
        for name, number in numbers.items():
            setattr(self, name, number)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    @property
    def faults_on(self) -> bool:
        """Whether any fault is injected (latency is handled apart from faults)."""
        return bool(self.error_rate or self.rate_limit_error_rate or self.malformed_rate)


@dataclass
class SandboxConfig:
    """Everything the command line can set."""

    host: str = "127.0.0.1"
    port: int = 12111
    customers: int = 0
    seed: int = 1
    #: The Stripe account the sandbox is (``GET /v1/account``, Stripe's permission errors):
    #: two sandboxes started with different ones are two accounts.
    account: str = "acct_1Headwater0000"
    keys: dict[str, frozenset[str]] = field(default_factory=lambda: dict(DEFAULT_KEYS))
    knobs: Knobs = field(default_factory=Knobs)
    created_span_days: float = 3 * 365.0
    clock_start: float | None = None
    state_file: str | None = None
    webhook_retry_seconds: float = 1.0
    webhook_max_attempts: int = 6
