"""`headwater serve` and `headwater worker`."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

import click
import uvicorn

from headwater.entrypoints.cli.output import handle_errors, opened_app
from headwater.entrypoints.serve.http import create_http_app


class _Server(uvicorn.Server):
    """uvicorn's server, leaving SIGTERM/SIGINT to `serve` (which stops the run workers
    too, and exits 0 after a clean stop rather than re-raising the signal)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8484, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(0, 64),
    help="Run workers in this process (0: serve without running runs).",
)
@handle_errors
def serve(host: str, port: int, workers: int) -> None:
    """Serve Headwater over HTTP, run the scheduler and WORKERS run workers.

    Stops cleanly on SIGTERM or Ctrl-C."""
    del workers  # the run workers join this process in the next change (issue 11)
    with opened_app() as app:
        config = uvicorn.Config(
            create_http_app(app), host=host, port=port, log_level="warning", lifespan="on"
        )
        server = _Server(config)

        def stop(_signum: int, _frame: FrameType | None) -> None:
            if server.should_exit:
                server.force_exit = True  # a second Ctrl-C: stop waiting for connections
            server.should_exit = True

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)
        server.run()
