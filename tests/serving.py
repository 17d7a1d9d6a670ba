"""Start a real `headwater serve` (or `headwater worker`) subprocess for tests.

    with start_serve(home, database_url=url, env={"HEADWATER_RUN_LEASE_SECONDS": "3"}) as s:
        httpx.get(f"{s.url}/healthz")

The process gets its own HEADWATER_HOME and HEADWATER_DATABASE_URL (the SQLite store in
that home when no URL is given) and a free loopback port; `start_serve` returns once
`/healthz` answers.  `stop()` (or leaving the `with`) sends SIGTERM, waits, then kills.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Service:
    """A `headwater serve` or `headwater worker` subprocess and its output."""

    def __init__(self, process: subprocess.Popen[str], url: str | None) -> None:
        self.process = process
        self.url = url or ""
        self.output: list[str] = []
        assert process.stdout is not None
        self._reader = threading.Thread(
            target=_drain, args=(process.stdout, self.output), daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return "".join(self.output)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for the process to end on its own; its exit code (output all read)."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL; the exit code."""
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGCONT)  # a stopped process cannot exit
                self.process.terminate()
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def __enter__(self) -> Service:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if exc is not None:  # pytest shows a failed test's stdout: what the process said
            print(f"--- the last lines of process {self.pid} ---\n{''.join(self.output[-80:])}")


def service_env(
    home: Path, database_url: str | None = None, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a Headwater subprocess on `home` and `database_url`."""
    full = {**os.environ, "PYTHONUNBUFFERED": "1", "HEADWATER_HOME": str(home)}
    full.pop("HEADWATER_DATABASE_URL", None)
    if database_url:
        full["HEADWATER_DATABASE_URL"] = database_url
    full.update(env or {})
    return full


def _popen(args: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "headwater", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(env),
    )


def start_serve(
    home: Path,
    *,
    database_url: str | None = None,
    env: Mapping[str, str] | None = None,
    workers: int = 2,
    args: Sequence[str] = (),
    startup_timeout: float = 60.0,
    port: int | None = None,
) -> Service:
    """Start `headwater serve` on `port` (a free one by default) and wait until
    `/healthz` answers."""
    port = free_port() if port is None else port
    command = ["serve", "--port", str(port), "--workers", str(workers), *args]
    process = _popen(command, service_env(home, database_url, env))
    service = Service(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + startup_timeout
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            service.stop()
            raise RuntimeError(f"headwater serve did not start:\n{service.text()}")
        try:
            if httpx.get(f"{service.url}/healthz", timeout=1.0).status_code == 200:
                return service
        except httpx.TransportError:
            pass
        time.sleep(0.05)


def start_worker(
    home: Path,
    *,
    database_url: str | None = None,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
) -> Service:
    """Start `headwater worker` (no HTTP); it is up when its process is."""
    process = _popen(["worker", "--workers", str(workers)], service_env(home, database_url, env))
    return Service(process, None)


def _drain(stream: IO[str], output: list[str]) -> None:
    # Keep reading so the child never blocks on a full pipe; remember lines for errors.
    for line in stream:
        if len(output) < 5000:
            output.append(line)


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Return once `condition()` is true; `AssertionError` naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
