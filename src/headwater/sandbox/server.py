"""Start the sandbox: build the data, bind a socket, serve with uvicorn."""

from __future__ import annotations

import asyncio
import errno
import gc
import signal
import socket
import time
from collections.abc import Callable

import uvicorn

from headwater.sandbox.app import SandboxApp
from headwater.sandbox.config import SandboxConfig
from headwater.sandbox.generate import populate
from headwater.sandbox.service import Sandbox


def build(config: SandboxConfig) -> Sandbox:
    """The sandbox with its data: loaded from ``--state`` if present, else generated."""
    sandbox = Sandbox(config)
    if config.state_file:
        from headwater.sandbox.snapshot import load

        if load(sandbox, config.state_file):
            return sandbox
    populate(sandbox, config.customers, config.seed, config.created_span_days)
    return sandbox


def _settle() -> None:
    # Move the start-up data out of the collector's view: full collections would
    # otherwise walk every stored customer and stall requests in proportion to N.
    gc.collect()
    gc.freeze()


class CannotListen(Exception):
    """The address could not be bound; the message says why and what to do."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port`, or `CannotListen` saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # proto says TCP, and with Nagle on, small responses stall ~40 ms on delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            message = (
                f"port {port} is already in use on {host}; choose another with "
                "--port P (or --port 0 for any free port)"
            )
        else:
            message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise CannotListen(message) from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def serve(config: SandboxConfig, announce: Callable[[str, Sandbox, float], None]) -> None:
    """Run until SIGINT/SIGTERM; `announce(url, sandbox, startup_seconds)` once listening.

    The port is bound before the data is built, so a busy port fails at once.
    """
    started = time.perf_counter()
    sock = bind(config.host, config.port)
    sandbox = build(config)
    _settle()
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    app = SandboxApp(config, sandbox)
    uv_config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="h11",
        timeout_keep_alive=30,
        date_header=False,  # the app sends its own, by the sandbox clock
    )
    server = uvicorn.Server(uv_config)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        announce(f"http://{shown}:{port}", sandbox, time.perf_counter() - started)
        try:
            await server.serve(sockets=[sock])
        finally:
            await sandbox.webhooks.close()
            if config.state_file:
                from headwater.sandbox.snapshot import save

                save(sandbox, config.state_file)

    asyncio.run(main())
