"""Full reads in a child process, so HTTP and JSON work runs beside the run engine.

The run engine's process is busy shaping and writing, and Python runs one thread at a
time: reader threads in the same process take turns with it.  A child process reads
the windows (`read_pages`, with its own client and rate budget) and hands each page
to the run as the bytes Stripe sent, which the run decodes once.

The boundary, all of it (the child is a fresh interpreter running `CHILD_MODULE`,
never a fork of a threaded process):

- **Run -> reading process**: one frame (`channel.write_frame`, tag ``S``) on the
  child's stdin, then stdin is closed.  Its payload is JSON: the `StripeSettings`
  fields (the API key among them: it exists only inside this pipe, never in the
  child's arguments, environment or a pickle), the window to read, the run's pid and
  the monotonic time before which the child must not send a request (the parent's
  rate budget carries over).
- **Reading process -> run**: frames on a pipe of their own (its descriptor number is
  the child's only argument; stdout stays free for stray output).  Each frame's
  fixed fields hold the child's API calls and retries so far; its tag is ``P``, a
  page: the payload is a Stripe list response as received, of whose ``data`` the
  first ``n`` records (a third fixed field) are the page; ``D``: the read is
  complete; ``E``: the error that stopped it, as JSON (`channel.error_to_data`).
  Both last frames carry ``next_free``: the monotonic time before which the child's
  budget allowed no further request, handed back to the run's own budget.
- **Reading process -> run, logs**: the child's log records (its HTTP retries, say),
  one JSON object per line on its stderr, which the run reads on a thread of its own
  ("headwater-reader-log", started in the run's context: see `_relay_logs`) and logs
  again in the run's process, so that they carry the run's ids and reach the same
  handlers (the service's JSON lines); any other line there (a crash's traceback) is
  logged as a warning.
- Frames are length-prefixed and checksummed, written and read whole whatever the
  pipe does (stop/continue, short writes): any damage is `ChannelBroken`, the end of
  the stream without ``D`` or ``E`` is `ReaderDied`.
- The run's side is `ReadingProcess`, iterated on the caller's thread; it blocks on
  the pipe.  The child starts when it is made and waits for ``S``, which is written
  when the first page is asked for: its start-up overlaps the run's next steps.  The
  child's threads are described in `full`.  The child dies with its parent
  (``PR_SET_PDEATHSIG`` on Linux), and the parent kills the child when the read is
  abandoned, so neither outlives a stopped run; the child ignores Ctrl-C (SIGINT
  reaches the whole process group), so that only the run decides what it means.
"""

from __future__ import annotations

import contextvars
import ctypes
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Generator
from contextlib import suppress
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import orjson

import headwater
from headwater.adapters.connectors.stripe import cpu
from headwater.adapters.connectors.stripe.channel import (
    ChannelBroken,
    Frame,
    ReaderDied,
    error_from_data,
    error_to_data,
    read_frame,
    write_frame,
)
from headwater.adapters.connectors.stripe.declaration import StripeSettings
from headwater.adapters.connectors.stripe.flight import gate_for
from headwater.adapters.connectors.stripe.full import read_pages
from headwater.adapters.connectors.stripe.http import StripeHTTP
from headwater.adapters.connectors.stripe.ratelimit import TokenBucket
from headwater.adapters.connectors.stripe.windows import Window
from headwater.kernel.records import Record

__all__ = ["CHILD_MODULE", "ChannelBroken", "ReaderDied", "ReadingProcess", "serve"]

#: What the child runs (a module of its own: running this one with ``-m`` would import
#: it twice, once through the package and once as ``__main__``).
CHILD_MODULE = "headwater.adapters.connectors.stripe.reading_process"
#: The fixed fields of every frame from the child: its API calls and retries so far,
#: and (in a page) how many records of the response's ``data`` are the page.
_META = struct.Struct("<qqI")
_PR_SET_PDEATHSIG = 1


class ReadingProcess:
    """Every customer in `root` exactly once, in pages, read by a child process.

    The child starts when this is made, so that its start-up (a fresh interpreter)
    overlaps whatever the run does next (its event position request); it sends no
    request before the first page is asked for.  Iterate for the pages; `close()` ends
    the child whether or not reading began.

    `count_calls(calls, retries)` receives the child's API calls as they happen (on
    the iterating thread); `not_before()`, asked when the first page is, is the
    `time.monotonic` before which the parent's own rate budget would allow its next
    request, and the child sends none before it; when the child ends, `hand_back(t)`
    receives the time before which its budget allowed no further request
    (`TokenBucket.not_before`), so that the budget holds for parent and child together.
    """

    def __init__(
        self,
        settings: StripeSettings,
        root: Window,
        count_calls: Callable[[int, int], None],
        not_before: Callable[[], float] = lambda: 0.0,
        hand_back: Callable[[float], None] | None = None,
    ) -> None:
        self._child, self._frames = _start_child()
        assert self._child.stderr is not None
        self._relay = threading.Thread(
            target=contextvars.copy_context().run,  # the run's context: its ids on each line
            args=(_relay_logs, self._child.stderr, self._child.pid),
            name="headwater-reader-log",
            daemon=True,
        )
        self._relay.start()
        self._open = True
        self._pages = self._read(settings, root, count_calls, not_before, hand_back)

    @property
    def running(self) -> bool:
        """Whether the child may still be running (not yet ended, read or closed)."""
        return self._open

    def __iter__(self) -> ReadingProcess:
        return self

    def __next__(self) -> list[Record]:
        return next(self._pages)

    def close(self) -> None:
        """Stop reading and end the child (at once: it is killed if still running)."""
        self._pages.close()
        self._end()

    def _end(self) -> None:
        if not self._open:
            return
        self._open = False
        try:
            if self._child.poll() is None:
                self._child.kill()
            self._child.wait()
            self._relay.join(timeout=5)  # stderr ends with the child
        finally:
            os.close(self._frames)
            if self._child.stdin is not None:  # still open if reading never began
                self._child.stdin.close()

    def _read(
        self,
        settings: StripeSettings,
        root: Window,
        count_calls: Callable[[int, int], None],
        not_before: Callable[[], float],
        hand_back: Callable[[float], None] | None,
    ) -> Generator[list[Record]]:
        child, frames = self._child, self._frames
        assert child.stdin is not None
        counted = (0, 0)
        try:
            request = {
                "settings": asdict(settings),
                "window": {"lo": root.lo, "hi": root.hi},
                "parent": os.getpid(),
                "not_before": not_before(),
            }
            with suppress(BrokenPipeError):  # a child that died at once is reported below
                write_frame(child.stdin.fileno(), b"S", orjson.dumps(request))
            child.stdin.close()
            while True:
                frame = _next_frame(frames, child)
                calls, retries, take = _META.unpack_from(frame.meta)
                if (calls, retries) != counted:
                    count_calls(calls - counted[0], retries - counted[1])
                    counted = (calls, retries)
                if frame.tag == b"P":
                    data: list[Record] = orjson.loads(frame.payload)["data"]  # the one decode
                    yield data if take == len(data) else data[:take]
                elif frame.tag in (b"E", b"D"):
                    last = orjson.loads(frame.payload)
                    if hand_back is not None:
                        hand_back(float(last["next_free"]))
                    if frame.tag == b"E":
                        raise error_from_data(last)
                    return
                else:
                    raise ChannelBroken(f"the reading process sent an unknown frame {frame.tag!r}")
        finally:
            self._end()


def _start_child() -> tuple[subprocess.Popen[bytes], int]:
    """The reading process, and the read end of the pipe its frames come through."""
    package_root = str(Path(headwater.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, *_pythonpath()])}
    # glibc gives each thread that allocates an arena of its own: reading 300,000
    # customers the process peaked at 83-86 MB, at 69 MB with two arenas, for the same CPU.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    frames, frames_end = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", CHILD_MODULE, str(frames_end)],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            pass_fds=(frames_end,),
        )
    except BaseException:
        os.close(frames)
        raise
    finally:
        os.close(frames_end)  # the child's copy is the only writer left
    return child, frames


def _next_frame(fd: int, child: subprocess.Popen[bytes]) -> Frame:
    """The next frame; a stream that ends or breaks says how the child ended."""
    try:
        frame = read_frame(fd)
    except ChannelBroken as exc:
        if child.poll() is None:
            child.kill()
        raise ChannelBroken(
            f"the Stripe reading process ended unexpectedly (exit code {child.wait()}): "
            f"{exc.message}"
        ) from exc
    if frame is None:
        raise ReaderDied(
            f"the Stripe reading process ended unexpectedly (exit code {child.wait(timeout=10)})"
        )
    return frame


#: The logger of what the reading process printed that was not a log record.
_CHILD_OUTPUT = "headwater.adapters.connectors.stripe.reading_process"


def _relay_logs(stream: IO[bytes], pid: int) -> None:
    """Log again, in this process, each line the reading process wrote on its stderr
    (`_JsonLines` records, or anything else it printed) until the stream ends."""
    with stream:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if not line.strip():
                continue
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError:
                data = None
            if not isinstance(data, dict) or "logger" not in data:
                data = {"logger": _CHILD_OUTPUT, "level": logging.WARNING, "message": line}
            _log_again(data, pid)


def _log_again(data: dict[str, Any], pid: int) -> None:
    logger = logging.getLogger(str(data["logger"]))
    level = int(data.get("level") or logging.WARNING)
    if not logger.isEnabledFor(level):
        return
    record = logger.makeRecord(
        logger.name, level, "(reading process)", 0, str(data.get("message", "")), (), None
    )
    record.process = pid  # where it happened, for the log line
    if data.get("time"):
        record.created = float(data["time"])
    if data.get("exception"):
        record.exc_text = str(data["exception"])
    logger.handle(record)


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
    for name in ("httpx", "httpcore"):  # a line per request: noise (retries are logged)
        logging.getLogger(name).setLevel(logging.WARNING)


def _pythonpath() -> list[str]:
    value = os.environ.get("PYTHONPATH")
    return value.split(os.pathsep) if value else []


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
    limiter = TokenBucket(settings.requests_per_second)
    limiter.not_before(float(request["not_before"]))  # the parent's budget carries over
    gate = gate_for(settings)
    http = StripeHTTP(settings, limiter=limiter, gate=gate)
    done = threading.Event()
    cpu.watch(gate, done, lambda: http.api_calls)  # at low latency: fewer in flight

    def send(tag: bytes, payload: bytes = b"", take: int = 0) -> None:
        write_frame(out, tag, payload, _META.pack(http.api_calls, http.retries, take))

    try:
        for page in read_pages(
            http, window, page_size=settings.page_size, workers=settings.workers
        ):
            send(b"P", page.raw, len(page.records))
        send(b"D", orjson.dumps({"next_free": limiter.next_free()}))
    except BrokenPipeError:
        pass  # the parent stopped listening
    except BaseException as exc:
        with suppress(OSError):
            last = {**error_to_data(exc), "next_free": limiter.next_free()}
            send(b"E", orjson.dumps(last))
    finally:
        done.set()
        http.close()


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
