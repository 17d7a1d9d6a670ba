"""`headwater serve` and `headwater worker`."""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import click
import uvicorn

from headwater.entrypoints.cli.output import handle_errors, opened_app
from headwater.entrypoints.serve.http import create_http_app
from headwater.entrypoints.serve.logs import log_json_lines
from headwater.kernel.errors import TerminalError
from headwater.services.runs.metrics import Metrics
from headwater.services.runs.worker import Workers

_WORKERS = click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(0, 64),
    help="Runs executed at once by this process (0: run none; schedules still tick).",
)


class _Server(uvicorn.Server):
    """uvicorn's server, leaving SIGTERM/SIGINT to `serve` (which stops the run workers
    too, and exits 0 after a clean stop rather than re-raising the signal)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _on_stop_signals(handler: Callable[[], None]) -> None:
    def handle(_signum: int, _frame: FrameType | None) -> None:
        handler()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)


def _listening(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` as uvicorn binds one, before anything starts: a
    port in use was an error line logged by uvicorn after the run workers started, and
    exit code 3 (what `pipelines run` gives a run with per-record errors)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise TerminalError(
                f"{host}:{port} is already in use (another serve?); choose another port "
                "with --port P, or stop what listens there"
            ) from None
        raise TerminalError(f"cannot listen on {host}:{port} (--host, --port): {exc}") from None
    return sock


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8484, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--forwarded-allow-ips",
    default=None,
    metavar="IPS",
    help="Comma-separated addresses of reverse proxies whose X-Forwarded-For/-Proto "
    "headers are trusted (client address, https). Default: none, so that a client "
    "cannot pose as another address (sign-in limits count per address).",
)
@_WORKERS
@handle_errors
def serve(host: str, port: int, forwarded_allow_ips: str | None, workers: int) -> None:
    """Serve Headwater over HTTP, tick the schedules and execute queued runs.

    With --workers 0 it executes no run (`headwater worker` processes do) but still
    ticks the schedules: the scheduler needs no leader, so every process may tick.
    SIGTERM or Ctrl-C stops it cleanly: running runs stop at a batch boundary and go
    back to the queue."""
    listening = _listening(host, port)
    log_json_lines()
    with listening, opened_app() as app:
        metrics = Metrics(app)
        config = uvicorn.Config(
            create_http_app(app, metrics=metrics),
            host=host,
            port=port,
            log_config=None,  # uvicorn's records go through our JSON lines too
            log_level="warning",
            access_log=False,
            # The C parser and event loop: h11 and asyncio's loop cost more CPU per
            # request than the API's own read routes (bench/api.py).
            http="httptools",
            loop="uvloop",
            lifespan="on",
            proxy_headers=forwarded_allow_ips is not None,
            forwarded_allow_ips=forwarded_allow_ips,
        )
        server = _Server(config)
        # With no run slot, only its housekeeping runs: heartbeat, reaping, schedule ticks.
        pool = Workers(app, workers, metrics=metrics)

        def stop() -> None:
            if server.should_exit:
                server.force_exit = True  # a second Ctrl-C: stop waiting for connections
            server.should_exit = True
            pool.request_stop()

        _on_stop_signals(stop)
        pool.start()
        try:
            server.run(sockets=[listening])
        finally:
            pool.stop()


@click.command("worker")
@_WORKERS
@handle_errors
def worker(workers: int) -> None:
    """Execute queued runs and tick the schedules, without HTTP.

    Start as many as needed, on one machine (SQLite or PostgreSQL store) or several
    (PostgreSQL).  SIGTERM or Ctrl-C stops it cleanly: running runs stop at a batch
    boundary and go back to the queue."""
    log_json_lines()
    stopping = threading.Event()
    _on_stop_signals(stopping.set)
    with opened_app() as app:
        pool = Workers(app, workers)
        pool.start()
        try:
            while not stopping.wait(1.0):
                pass
        finally:
            pool.stop()
