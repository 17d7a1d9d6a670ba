"""Start a sandbox in a subprocess for tests and benchmarks.

The server runs as ``python -m headwater.sandbox`` so it never competes with the test
process for the GIL.  Rate limits are off unless asked for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from types import TracebackType
from typing import IO, Any

import httpx

SECRET_KEY = "sk_test_sandbox"  # noqa: S105 - the documented sandbox key
_READY = "Headwater Stripe sandbox listening on "


class SandboxDidNotStart(RuntimeError):
    """The sandbox process exited, or was not ready in time.

    `reason` is one line saying why (the last line it printed, which is its error);
    `output` is all it printed.
    """

    def __init__(self, output: str, reason: str) -> None:
        super().__init__("sandbox did not start:\n" + output)
        self.output = output
        self.reason = reason


class RunningSandbox:
    """A sandbox subprocess; use as a context manager or call `stop()`."""

    def __init__(
        self,
        process: subprocess.Popen[str],
        url: str,
        output: list[str],
        reader: threading.Thread,
    ) -> None:
        self.process = process
        self._reader = reader
        self.url = url
        self.secret_key = SECRET_KEY
        self.output = output
        self._http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {SECRET_KEY}"}, timeout=30.0
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body)
        if response.status_code != 200:
            raise RuntimeError(f"sandbox {method} {path}: {response.status_code} {response.text}")
        return response.json()

    def control(self, **knobs: float) -> dict[str, float]:
        """Change knobs now: latency_ms, jitter_ms, latency_median_ms, latency_p99_ms,
        latency_per_object_ms, error_rate, rate_limit_error_rate, malformed_rate,
        rate_limit, live_rate_limit, endpoint_rate_limit, concurrency_limit (0 = unlimited)."""
        result: dict[str, float] = self._call("POST", "/_sandbox/control", knobs)
        return result

    def knobs(self) -> dict[str, float]:
        result: dict[str, float] = self._call("GET", "/_sandbox/control")
        return result

    def advance_clock(self, seconds: float) -> int:
        """Move the sandbox clock forward; returns the sandbox's new ``now``."""
        return int(self._call("POST", "/_sandbox/clock", {"advance_seconds": seconds})["now"])

    def now(self) -> int:
        return int(self._call("GET", "/_sandbox/clock")["now"])

    def stats(self) -> dict[str, Any]:
        """``requests``, ``by_path``, ``by_status``, ``rate_limited``,
        ``rate_limited_by_reason``, ``peak_in_flight``, ``server_errors``, ``malformed``,
        ``webhook_*`` counters, ``customers``, ``events``."""
        result: dict[str, Any] = self._call("GET", "/_sandbox/stats")
        return result

    def timeline(self) -> list[tuple[float, float, int, str]]:
        """Each answered API request since the last reset (the newest 50,000):
        ``(admitted, answered, status, operation)``, in `time.time` seconds."""
        rows = self._call("GET", "/_sandbox/stats/timeline")["timeline"]
        return [(float(a), float(b), int(s), str(o)) for a, b, s, o in rows]

    def reset_stats(self) -> None:
        self._call("POST", "/_sandbox/stats/reset")

    def add_webhook(
        self, url: str, secret: str | None = None, events: tuple[str, ...] = ("*",)
    ) -> dict[str, Any]:
        """Register a webhook endpoint; the answer includes its signing ``secret``."""
        form: dict[str, Any] = {"url": url, "enabled_events[]": list(events)}
        if secret:
            form["secret"] = secret
        response = self._http.post("/v1/webhook_endpoints", data=form)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def set_webhook_disabled(self, endpoint_id: str, disabled: bool = True) -> dict[str, Any]:
        """Disable (or enable again) an endpoint: a disabled one gets no deliveries, and
        events made while it was disabled are never sent to it."""
        form = {"disabled": "true" if disabled else "false"}
        response = self._http.post(f"/v1/webhook_endpoints/{endpoint_id}", data=form)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def webhooks(self) -> list[dict[str, Any]]:
        """The registered endpoints (without their secrets)."""
        response = self._http.get("/v1/webhook_endpoints")
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["data"]
        return found

    def snapshot(self) -> None:
        self._call("POST", "/_sandbox/snapshot")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM, which also saves ``--state``); kill after 10 s."""
        self._http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_sandbox(
    customers: int = 0,
    seed: int = 1,
    *,
    keys: dict[str, str] | None = None,
    account: str | None = None,
    port: int = 0,
    rate_limit: float | None = None,
    live_rate_limit: float | None = None,
    endpoint_rate_limit: float | None = None,
    concurrency_limit: int | None = None,
    latency_ms: float = 0,
    jitter_ms: float = 0,
    latency_median_ms: float = 0,
    latency_p99_ms: float = 0,
    latency_per_object_ms: float = 0,
    error_rate: float = 0,
    rate_limit_error_rate: float = 0,
    malformed_rate: float = 0,
    created_span_days: float | None = None,
    state_file: str | None = None,
    clock_start: float | None = None,
    webhook_retry_seconds: float = 0.2,
    startup_timeout: float = 120.0,
) -> RunningSandbox:
    """Start a sandbox on a free loopback port and wait until it answers.

    `keys` maps extra keys to permissions (``{"rk_test_x": "customers:read"}``).
    A rate or concurrency limit of None means unlimited.
    """
    options: dict[str, object] = {
        "--host": "127.0.0.1",
        "--port": port,
        "--account": account,
        "--customers": customers,
        "--seed": seed,
        "--rate-limit": rate_limit or 0,
        "--live-rate-limit": live_rate_limit or 0,
        "--endpoint-rate-limit": endpoint_rate_limit or 0,
        "--concurrency-limit": concurrency_limit or 0,
        "--latency-ms": latency_ms,
        "--jitter-ms": jitter_ms,
        "--latency-median-ms": latency_median_ms,
        "--latency-p99-ms": latency_p99_ms,
        "--latency-per-object-ms": latency_per_object_ms,
        "--error-rate": error_rate,
        "--rate-limit-error-rate": rate_limit_error_rate,
        "--malformed-rate": malformed_rate,
        "--webhook-retry-seconds": webhook_retry_seconds,
        "--created-span-days": created_span_days,
        "--state": state_file,
        "--clock-start": clock_start,
    }
    args = [sys.executable, "-m", "headwater.sandbox"]
    for flag, value in options.items():
        if value is not None:  # None: the sandbox's own default
            args += [flag, str(value)]
    for key, permissions in (keys or {}).items():
        args += ["--key", f"{key}={permissions}"]
    return _launch(args, startup_timeout)


def _launch(args: list[str], startup_timeout: float) -> RunningSandbox:
    """Start the sandbox process and wait for its ready line (its URL)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert process.stdout is not None
    output: list[str] = []
    found = threading.Event()
    reader = threading.Thread(target=_drain, args=(process.stdout, output, found), daemon=True)
    reader.start()
    deadline = time.monotonic() + startup_timeout
    while not found.wait(0.05):
        exited = process.poll() is not None
        if exited or time.monotonic() > deadline:
            process.kill()
            process.wait()
            reader.join(timeout=5)
            process.stdout.close()
            printed = "".join(output)
            last = next((line.strip() for line in reversed(output) if line.strip()), "")
            if not exited:
                reason = f"not ready after {startup_timeout:g} s"
            else:
                reason = last or f"it exited with code {process.returncode}"
            raise SandboxDidNotStart(printed, reason)
    url = next(line for line in output if line.startswith(_READY))[len(_READY) :].strip()
    return RunningSandbox(process, url, output, reader)


def _drain(stream: IO[str], output: list[str], found: threading.Event) -> None:
    # Keep reading so the child never blocks on a full pipe; remember lines for errors.
    for line in stream:
        if len(output) < 1000:
            output.append(line)
        if line.startswith(_READY):
            found.set()
