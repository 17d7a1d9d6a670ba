"""``headwater sandbox``: the click command (also ``python -m headwater.sandbox``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from headwater.kernel.errors import mask_secret
from headwater.sandbox.config import DEFAULT_KEYS, Knobs, SandboxConfig, parse_key_option
from headwater.sandbox.service import Sandbox
from headwater.sandbox.store import check_clock_time


def _keys(options: tuple[str, ...]) -> dict[str, frozenset[str]]:
    keys = dict(DEFAULT_KEYS)
    for option in options:
        try:
            key, permissions = parse_key_option(option)
        except ValueError as exc:
            raise click.BadParameter(
                f"{mask_secret(option.partition('=')[0])}: {exc}", param_hint="--key"
            ) from None
        keys[key] = permissions
    return keys


def _clock_start(_context: click.Context, _param: click.Parameter, value: float | None) -> Any:
    if value is not None:
        try:
            check_clock_time(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def _state_file(_context: click.Context, _param: click.Parameter, value: str | None) -> Any:
    # Refused now rather than when the state is saved at exit, with the session's data.
    if value is None:
        return None
    path = Path(value)
    if path.is_dir():
        raise click.BadParameter(f"{value} is a directory, not a file")
    folder = path.parent
    if not folder.is_dir():
        raise click.BadParameter(f"the directory {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise click.BadParameter(f"cannot write in the directory {folder}")
    return value


def _rate(name: str, value: float) -> float:
    if value < 0:
        raise click.BadParameter("must be >= 0 (0 = unlimited)", param_hint=name)
    return value


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=12111, show_default=True, help="Port (0 = any free port).")
@click.option("--customers", default=0, show_default=True, help="Customers to generate.")
@click.option("--seed", default=1, show_default=True, help="Seed for generated data and ids.")
@click.option(
    "--account",
    default="acct_1Headwater0000",
    show_default=True,
    help="The Stripe account id it answers as (GET /v1/account): another id, another account.",
)
@click.option(
    "--key",
    "key_options",
    multiple=True,
    metavar="KEY=PERMISSIONS",
    help="Extra API key, e.g. rk_test_x=customers:read,events:read ('*' = all).",
)
@click.option(
    "--rate-limit", default=25.0, show_default=True, help="Test-mode requests/s (0 = unlimited)."
)
@click.option(
    "--live-rate-limit",
    default=100.0,
    show_default=True,
    help="Live-mode requests/s (0 = unlimited).",
)
@click.option(
    "--endpoint-rate-limit",
    default=25.0,
    show_default=True,
    help="Requests/s per named operation, under the global limit (0 = unlimited).",
)
@click.option(
    "--concurrency-limit",
    default=0,
    show_default=True,
    help="Requests in flight per key; more are answered 429 (0 = unlimited).",
)
@click.option("--latency-ms", default=0.0, help="Added latency per request (constant).")
@click.option("--jitter-ms", default=0.0, help="Random extra latency, up to this.")
@click.option("--latency-median-ms", default=0.0, help="Lognormal extra latency: its median.")
@click.option(
    "--latency-p99-ms",
    default=0.0,
    help="Lognormal extra latency: its 99th percentile (>= the median; 0 = no spread).",
)
@click.option(
    "--latency-per-object-ms", default=0.0, help="Extra latency per object an answer returns."
)
@click.option("--error-rate", default=0.0, help="Fraction of requests answered 500/503.")
@click.option("--rate-limit-error-rate", default=0.0, help="Fraction answered 429.")
@click.option("--malformed-rate", default=0.0, help="Fraction with truncated/garbled JSON.")
@click.option(
    "--created-span-days",
    default=3 * 365.0,
    show_default=True,
    help="Generated customers are created over this many days before now (not before 1970).",
)
@click.option(
    "--clock-start",
    type=float,
    default=None,
    callback=_clock_start,
    help="Unix time the sandbox clock starts at (default: now; at most 2147483647).",
)
@click.option(
    "--state",
    "state_file",
    default=None,
    metavar="FILE",
    callback=_state_file,
    help="Load data from FILE if it exists; save it there on exit.",
)
@click.option(
    "--webhook-retry-seconds",
    default=1.0,
    show_default=True,
    help="First retry delay for failed webhook deliveries (doubles each time).",
)
def sandbox(
    host: str,
    port: int,
    customers: int,
    seed: int,
    account: str,
    key_options: tuple[str, ...],
    rate_limit: float,
    live_rate_limit: float,
    endpoint_rate_limit: float,
    concurrency_limit: int,
    latency_ms: float,
    jitter_ms: float,
    latency_median_ms: float,
    latency_p99_ms: float,
    latency_per_object_ms: float,
    error_rate: float,
    rate_limit_error_rate: float,
    malformed_rate: float,
    created_span_days: float,
    clock_start: float | None,
    state_file: str | None,
    webhook_retry_seconds: float,
) -> None:
    """Run a Stripe-compatible API server for demos, tests and benchmarks."""
    knobs = Knobs()
    try:
        knobs.update(
            {
                "rate_limit": _rate("--rate-limit", rate_limit),
                "live_rate_limit": _rate("--live-rate-limit", live_rate_limit),
                "endpoint_rate_limit": _rate("--endpoint-rate-limit", endpoint_rate_limit),
                "concurrency_limit": _rate("--concurrency-limit", concurrency_limit),
                "latency_ms": latency_ms,
                "jitter_ms": jitter_ms,
                "latency_median_ms": latency_median_ms,
                "latency_p99_ms": latency_p99_ms,
                "latency_per_object_ms": latency_per_object_ms,
                "error_rate": error_rate,
                "rate_limit_error_rate": rate_limit_error_rate,
                "malformed_rate": malformed_rate,
            }
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if customers < 0:
        raise click.BadParameter("must be >= 0", param_hint="--customers")
    config = SandboxConfig(
        host=host,
        port=port,
        customers=customers,
        seed=seed,
        account=account,
        keys=_keys(key_options),
        knobs=knobs,
        created_span_days=created_span_days,
        clock_start=clock_start,
        state_file=state_file,
        webhook_retry_seconds=webhook_retry_seconds,
    )
    from headwater.sandbox.server import CannotListen, serve  # uvicorn only when serving
    from headwater.sandbox.snapshot import StateFileError

    try:
        serve(config, _announce)
    except (CannotListen, StateFileError) as exc:
        raise click.ClickException(str(exc)) from None


def _announce(url: str, sandbox: Sandbox, seconds: float) -> None:
    # Sandbox keys are fixed, documented test values, so printing them in full is the point.
    lines = [
        f"Headwater Stripe sandbox listening on {url}",
        f"  customers: {len(sandbox.customers)} (ready in {seconds:.1f}s)",
        "  keys:",
    ]
    for key, permissions in sandbox.config.keys.items():
        shown = key if key in DEFAULT_KEYS else mask_secret(key)  # never echo user secrets
        lines.append(f"    {shown}  {','.join(sorted(permissions))}")
    lines.append(f"  control: {url}/_sandbox/control  (Ctrl+C to stop)")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
