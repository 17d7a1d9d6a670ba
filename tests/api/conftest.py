"""Fixtures for the REST API's tests: the API served over real HTTP by uvicorn (in a
thread of the test process, mounted at ``/api/v1`` as ``headwater serve`` mounts it),
two workspaces each with its own token, a shared Stripe sandbox, and `httpx` clients.

Tests that need the whole service (workers that execute queued runs) start a real
``headwater serve`` process instead (`tests/serving.py`).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from tests.serving import service_env

from headwater.entrypoints.api import mount
from headwater.kernel.settings import Settings
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services.app import App
from headwater.services.auth import tokens, workspaces

API = "/api/v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """The API of one `App`, served over HTTP at `url` (its ``/api/v1`` prefix)."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def serve_api(app: App) -> Served:
    """Serve `app`'s API over HTTP on a free loopback port until `stop()`."""
    root = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    mount(root, app)
    port = free_port()
    config = uvicorn.Config(root, host="127.0.0.1", port=port, log_level="warning", workers=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    return Served(f"http://127.0.0.1:{port}{API}", server, thread)


@pytest.fixture
def api_app(settings: Settings) -> Iterator[App]:
    """The application on the embedded defaults (SQLite store, DuckDB warehouses)."""
    application = App.open(settings)
    yield application
    application.close()


@pytest.fixture
def served(api_app: App) -> Iterator[Served]:
    running = serve_api(api_app)
    yield running
    running.stop()


def client(url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60.0)


@dataclass
class Tenant:
    """One workspace as an API caller sees it: its `App` and a client with its token."""

    app: App
    token: str
    http: httpx.Client


@pytest.fixture
def tenant(api_app: App, served: Served) -> Iterator[Tenant]:
    """The default workspace, with a token."""
    raw, _ = tokens.create_token(api_app, "tests")
    with client(served.url, raw) as http:
        yield Tenant(api_app, raw, http)


@pytest.fixture
def other_tenant(api_app: App, served: Served) -> Iterator[Tenant]:
    """A second workspace of the same store, with its own token."""
    workspace = workspaces.add_workspace(api_app, "other")
    other = api_app.in_workspace(workspace.id)
    raw, _ = tokens.create_token(other, "tests")
    with client(served.url, raw) as http:
        yield Tenant(other, raw, http)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    """A sandbox shared by a module's tests (they only read from it)."""
    with start_sandbox(customers=300, seed=7) as running:
        yield running


def cli_token(home: Path, database_url: str | None) -> str:
    """A token of the default workspace, made with the CLI (`tokens create --json`)."""
    done = subprocess.run(
        [sys.executable, "-m", "headwater", "tokens", "create", "--name", "flow", "--json"],
        env=service_env(home, database_url),
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(done.stdout)["token"])


def follow(http: httpx.Client, run_id: str, timeout: float = 180.0) -> dict[str, Any]:
    """Poll the run until it ends; returns its last document."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = http.get(f"/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return dict(run)
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not end in {timeout} s: {run}")
