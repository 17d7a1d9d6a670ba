"""`headwater demo` (the README's first command) ends with the console served on the
demo data, and prints its URL and a sign-in that works."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.serving import free_port, service_env

pytestmark = pytest.mark.slow


def test_demo_ends_with_the_console_on_the_demo_data(tmp_path: Path) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "headwater",
            "demo",
            "--customers",
            "150",
            "--seed",
            "3",
            "--port",
            str(port),
        ],
        env=service_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert demo.stdout is not None
    try:
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("Sign in with") or len(lines) > 200:
                break
        output = "".join(lines)
        assert f"The console: http://127.0.0.1:{port}/" in output, output
        email, password = re.search(r"Sign in with (\S+) and the password (\S+)", output).groups()  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(200):  # the server starts right after the line is printed
                try:
                    client.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            signed = client.post(
                "/sign-in", data={"email": email, "password": password}, headers={"Origin": url}
            )
            assert signed.status_code == 303
            sources = client.get("/sources")
            assert "Stripe sandbox (demo)" in sources.text
            connection = re.search(r'href="(/connections/conn_\w+/pipelines)"', sources.text)
            assert connection is not None
            pipelines = client.get(connection.group(1)).text
            assert "Demo: all customers" in pipelines
            assert "Import completed • 150 customers imported • 0 filtered out • no errors" in (
                pipelines
            )
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            assert demo.wait(timeout=30) == 0
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait()
            demo.stdout.close()
