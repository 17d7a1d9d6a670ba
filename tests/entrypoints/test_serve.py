"""`headwater serve` as a real process: health, the root app's shape, clean stops."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from fastapi import FastAPI
from tests.serving import start_serve

from headwater.entrypoints.serve import http
from headwater.kernel.settings import Settings
from headwater.sandbox.testing import start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.auth import users
from headwater.services.pipelines import manage, runner


def test_serve_answers_healthz_and_stops_on_sigterm(home: Path) -> None:
    with start_serve(home, workers=0) as served:
        answer = httpx.get(f"{served.url}/healthz")
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok"}
        # The root app publishes no OpenAPI document of its own (the API has one).
        assert httpx.get(f"{served.url}/openapi.json").status_code == 404
        assert httpx.get(f"{served.url}/docs").status_code == 404
        served.signal(signal.SIGTERM)
        assert served.wait(timeout=30) == 0


def test_mounts_are_called_with_the_root_and_the_app(settings: Settings) -> None:
    seen: list[tuple[FastAPI, App]] = []

    def mount(root: FastAPI, app: App) -> None:
        seen.append((root, app))

        @root.get("/mounted")
        def mounted() -> dict[str, str]:
            return {"workspace": app.workspace_id}

    app = App.open(settings)
    try:
        root = http.create_http_app(app, mounts=(mount,))
        assert seen == [(root, app)]
        assert asyncio.run(_get(root, "/mounted")) == {"workspace": app.workspace_id}
    finally:
        app.close()


async def _get(root: FastAPI, path: str) -> object:
    transport = httpx.ASGITransport(app=root)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return (await client.get(path)).json()


def test_sigterm_ends_serve_while_a_page_follows_a_queued_run(
    home: Path, settings: Settings
) -> None:
    """A console page following a run's progress holds its stream open while the run
    is live, and a run is live while queued: uvicorn waited for that stream without
    end, so SIGTERM never stopped the process (and its workers never stopped)."""
    app = App.open(settings)
    try:
        users.add_user(app, "ada@example.com", "correct horse battery")
        with start_sandbox(customers=0, seed=3) as sandbox:
            conn = connections.add_stripe(app, "s", sandbox.secret_key, sandbox.url, 50.0)
            spec = {"kind": "mapping", "mapping": {"email": "email"}}
            run = runner.enqueue(app, manage.create(app, conn.id, "p", spec).id)
            with (
                start_serve(home, workers=0) as served,
                httpx.Client(base_url=served.url, timeout=30) as client,
            ):
                signed = client.post(
                    "/sign-in",
                    data={"email": "ada@example.com", "password": "correct horse battery"},
                    headers={"Origin": served.url},
                )
                assert signed.status_code == 303
                with client.stream("GET", f"/runs/{run.id}/events") as stream:
                    assert next(stream.iter_lines())  # the page follows the queued run
                    served.signal(signal.SIGTERM)
                    assert served.wait(timeout=30) == 0
    finally:
        app.close()


def test_a_port_in_use_is_a_clear_error_before_anything_starts(home: Path) -> None:
    """A port another process listens on made uvicorn log a JSON line ("error while
    attempting to bind") after the run workers had started, and serve exited 3, the
    code `pipelines run` gives a run with per-record errors; it is now one line naming
    the address and the option, exit 1, before any worker starts."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "headwater", "serve", "--port", str(port), "--workers", "1"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"error: 127.0.0.1:{port} is already in use" in done.stderr, done.stderr
    assert "--port" in done.stderr, done.stderr
    assert "worker(s) started" not in done.stdout + done.stderr
