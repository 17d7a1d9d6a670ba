"""The child process that performs a full read (see `offload`, which starts it).

It reads its request (one ``S`` frame) on stdin, reads the windows with `read_pages`
and sends each page to the run as the bytes Stripe sent.  Given the first page and its
time (`ReadingProcess.position`), it reads the rest from that page and, meanwhile, the
event position (`ChangeReader.position_before`), which it sends (``T``) ahead of every
page, so that the run has it before any page.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from contextlib import suppress
from typing import Any

import orjson

from headwater.adapters.connectors.stripe import cpu
from headwater.adapters.connectors.stripe.background import Background
from headwater.adapters.connectors.stripe.changes import ChangeReader
from headwater.adapters.connectors.stripe.channel import error_to_data, read_frame, write_frame
from headwater.adapters.connectors.stripe.declaration import StripeSettings
from headwater.adapters.connectors.stripe.flight import Gate, gate_for
from headwater.adapters.connectors.stripe.full import read_pages
from headwater.adapters.connectors.stripe.http import Reply, StripeHTTP
from headwater.adapters.connectors.stripe.offload import META
from headwater.adapters.connectors.stripe.ratelimit import RequestBudget
from headwater.adapters.connectors.stripe.windows import Window

_PR_SET_PDEATHSIG = 1


class _JsonLines(logging.Formatter):
    """The reading process's log records, one JSON object per line (`_relay_logs`)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": record.created,
            "level": record.levelno,
            "logger": record.name,
            "message": record.getMessage(),
            "exception": self.formatException(record.exc_info) if record.exc_info else None,
        }
        return orjson.dumps(line).decode()


def _log_to_parent() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLines())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # The Stripe client logs its retries and failures itself; urllib3 would add a line
    # whenever more requests were under way than connections kept (one is then closed).
    logging.getLogger("urllib3").setLevel(logging.ERROR)


def serve() -> None:
    """The child: read the windows and send pages; any error is sent, never raised."""
    # Ctrl-C reaches the whole process group: the run decides what it means and ends
    # this process itself, so the reader never reports it as a failure of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _log_to_parent()
    out = int(sys.argv[1])
    request = _request(sys.stdin.fileno())
    _die_with(int(request["parent"]))
    settings = StripeSettings(**request["settings"])
    window = Window(int(request["window"]["lo"]), request["window"]["hi"])
    limiter = _Reserving(settings.requests_per_second, settings.budget_file)
    limiter.adopt(request["sent"])  # the parent's budget carries over
    gate = gate_for(settings)
    http = StripeHTTP(settings, limiter=limiter, gate=gate)
    done = threading.Event()
    cpu.watch(gate, done, lambda: http.api_calls)  # at low latency: fewer in flight
    first, position = _started(request.get("start"), http, gate, settings, limiter.reserved)

    def send(tag: bytes, payload: bytes = b"", take: int = 0) -> None:
        write_frame(out, tag, payload, META.pack(http.api_calls, http.retries, take))

    def send_position() -> None:
        assert position is not None
        send(b"T", orjson.dumps(position.outcome()))

    try:
        if position is not None:  # its request first: the windows' requests queue behind it
            position.start()
            limiter.reserved.wait()
        position_due = position is not None
        for page in read_pages(
            http,
            window,
            page_size=settings.page_size,
            workers=settings.workers,
            first=first,
            paging_only=True,  # the run decodes each page, whole
        ):
            if position_due:  # while the windows are read
                send_position()
                position_due = False
            send(b"P", page.raw, len(page.records))
        if position_due:  # no page: the account has no customers
            send_position()
        send(b"D", orjson.dumps({"sent": limiter.history()}))
    except BrokenPipeError:
        pass  # the parent stopped listening
    except BaseException as exc:
        with suppress(OSError):
            last = {**error_to_data(exc), "sent": limiter.history()}
            send(b"E", orjson.dumps(last))
    finally:
        done.set()
        http.close()


class _Reserving(RequestBudget):
    """A request budget that tells when a send time was first reserved (`reserved`)."""

    def __init__(self, rate: float, shared: str | None) -> None:
        super().__init__(rate, shared=shared)
        self.reserved = threading.Event()

    def reserve(self) -> float:
        wait = super().reserve()
        self.reserved.set()
        return wait


def _started(
    start: dict[str, Any] | None,
    http: StripeHTTP,
    gate: Gate,
    settings: StripeSettings,
    sent: threading.Event,
) -> tuple[Reply | None, Background[dict[str, Any]] | None]:
    """From `ReadingProcess.position` (`start`, if the run read the root window's first
    page): that page, and the event position before the server second it names."""
    if start is None:
        return None, None
    raw = str(start["first"]).encode()
    gate.answered_elsewhere(float(start["latency"]))
    first = Reply(orjson.loads(raw), None, None, raw)
    return first, _position(http, settings.page_size, int(start["served"]), sent)


def _position(
    http: StripeHTTP, page_size: int, served: int, sent: threading.Event
) -> Background[dict[str, Any]]:
    """The event position (`ChangeReader.position_before`), read on a thread of its own
    while the windows are read: its request goes ahead of theirs for the budget, so
    that the run, which waits for it, is not kept waiting behind a queue of them.
    `sent` is set once its request has a send time, or when it failed before."""
    reader = ChangeReader(http, page_size)
    return Background(lambda: reader.position_before(served), "stripe-position", sent.set)


def _request(fd: int) -> dict[str, Any]:
    frame = read_frame(fd)
    if frame is None or frame.tag != b"S":
        os._exit(2)  # started by something other than `ReadingProcess`
    request: dict[str, Any] = orjson.loads(frame.payload)
    return request


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


if __name__ == "__main__":
    serve()
