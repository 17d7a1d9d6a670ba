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
  child's arguments, environment or a pickle), the window to read, the run's pid, the
  parent's last send times (its rate budget carries over: `RequestBudget.history`)
  and, when the run took the first page to time the event position
  (`ReadingProcess.position`), that page and its time.
- **Reading process -> run**: frames on a pipe of their own (its descriptor number is
  the child's only argument; stdout stays free for stray output).  Each frame's
  fixed fields hold the child's API calls and retries so far; its tag is ``P``, a
  page: the payload is a Stripe list response as received, of whose ``data`` the
  first ``n`` records (a third fixed field) are the page; ``D``: the read is
  complete; ``E``: the error that stopped it, as JSON (`channel.error_to_data`);
  ``T``: the event position, as JSON, ahead of every page (when asked for).
  Both last frames carry ``sent``: the child's last send times, handed back to the
  run's own budget.
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
  when the first page or the position is asked for: its start-up overlaps the run's
  next steps.  The child's side is `reading_process`, its threads are described in
  `full`.  The child dies with its parent (``PR_SET_PDEATHSIG`` on Linux), and the
  parent kills the child when the read is abandoned, so neither outlives a stopped
  run; the child ignores Ctrl-C (SIGINT reaches the whole process group), so that
  only the run decides what it means.
"""

from __future__ import annotations

import contextvars
import fcntl
import logging
import os
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
from headwater.adapters.connectors.stripe.channel import (
    ChannelBroken,
    Frame,
    ReaderDied,
    error_from_data,
    read_frame,
    write_frame,
)
from headwater.adapters.connectors.stripe.declaration import StripeSettings
from headwater.adapters.connectors.stripe.errors import MalformedResponse
from headwater.adapters.connectors.stripe.windows import Window
from headwater.kernel.records import Record

__all__ = ["CHILD_MODULE", "META", "ChannelBroken", "ReaderDied", "ReadingProcess"]

#: What the child runs (a module of its own: running this one with ``-m`` would import
#: it twice, once through the package and once as ``__main__``).
CHILD_MODULE = "headwater.adapters.connectors.stripe.reading_process"
#: The fixed fields of every frame from the child: its API calls and retries so far,
#: and (in a page) how many records of the response's ``data`` are the page.
META = struct.Struct("<qqI")
#: The frames' pipe holds this much (Linux's default is 64 KiB, less than one page of
#: 100 customers: the reading process then waited for the run at every page and the
#: run for it at every frame, a few switches a page).  1 MiB is what an unprivileged
#: process may ask for (``/proc/sys/fs/pipe-max-size``).  Measured at zero latency:
#: 300,000 customers into DuckDB 11.5-12.5 s against 12.9-13.9 s (five runs each, the
#: whole CLI run), 1,000,000 in 31.1 s and 31.9 s against 35.7 s and 33.7 s; 256 KiB did
#: as well as 1 MiB, 4 MiB no better.
PIPE_BYTES = 1 << 20


class ReadingProcess:
    """Every customer in `root` exactly once, in pages, read by a child process.

    The child starts when this is made, so that its start-up (a fresh interpreter)
    overlaps whatever the run does next; it sends no request before the first page or
    the event position (`position`) is asked for.  Iterate for the pages; `close()`
    ends the child whether or not reading began.

    `count_calls(calls, retries)` receives the child's API calls as they happen (on
    the calling thread); `history()`, asked when the read begins, is the parent's last
    send times (`time.monotonic`, `RequestBudget.history`), which the child's budget
    counts; when the child ends, `hand_back(sent)` receives the child's last send times
    (`RequestBudget.adopt`), so that the budget holds for parent and child together.
    """

    def __init__(
        self,
        settings: StripeSettings,
        root: Window,
        count_calls: Callable[[int, int], None],
        history: Callable[[], list[float]] = list,
        hand_back: Callable[[list[float]], None] | None = None,
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
        self._begun = False
        self.root = root  # the window read
        self._request = {"settings": asdict(settings), "window": {"lo": root.lo, "hi": root.hi}}
        self._count_calls, self._history, self._hand_back = count_calls, history, hand_back
        self._counted = (0, 0)
        self._pages = self._read()

    @property
    def running(self) -> bool:
        """Whether the child may still be running (not yet ended, read or closed)."""
        return self._open

    @property
    def begun(self) -> bool:
        """Whether the child was told to read (by the first page or `position`)."""
        return self._begun

    def position(self, first: bytes, served: int, latency: float) -> dict[str, Any]:
        """Begin the read from `first`, and return the event position taken for it.

        `first` is the body of the answer to the root window's first request, read by
        the caller (whose budget the child's then continues) in `latency` seconds (the
        child's first sample of it), at server second `served` or later
        (`changes.served_after`).  The child reads the rest from it
        and, while its windows are read, the newest event created before `served`
        less a margin (`ChangeReader.position_before`): every change before it is in
        every page, every later one is after it.  Its request counts against the
        child's budget like any other.  Only before the read has begun.
        """
        if self._begun:
            raise RuntimeError("the read has begun: its event position can no longer be taken")
        self._begin({"first": first.decode(), "served": served, "latency": latency})
        frame, _ = self._next()
        if frame.tag != b"T":
            raise ChannelBroken(f"the reading process sent {frame.tag!r} before its position")
        position: dict[str, Any] = orjson.loads(frame.payload)
        return position

    def __iter__(self) -> ReadingProcess:
        return self

    def __next__(self) -> list[Record]:
        return next(self._pages)

    def interrupt(self) -> None:
        """From any thread: end the child now, wherever it waits (on Stripe, between
        retries); the thread reading its pages gets `ReaderDied`.  `close` still ends
        the read."""
        if self._open:
            with suppress(ProcessLookupError):
                self._child.kill()  # no-op once it has been waited for

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
            if self._child.stdin is not None and not self._child.stdin.closed:
                self._child.stdin.close()  # still open if reading never began

    def _begin(self, start: dict[str, Any] | None = None) -> None:
        """Send the child its request: the read, and the start `position` gives it."""
        self._begun = True
        child = self._child
        assert child.stdin is not None
        request = {
            **self._request,
            "parent": os.getpid(),
            "sent": self._history(),
            "start": start,
        }
        with suppress(BrokenPipeError):  # a child that died at once is reported below
            write_frame(child.stdin.fileno(), b"S", orjson.dumps(request))
        child.stdin.close()

    def _next(self) -> tuple[Frame, int]:
        """The child's next frame but an error (raised) and how many records of a page's
        ``data`` are the page; the calls it reports are counted first."""
        try:
            frame = _next_frame(self._frames, self._child)
            calls, retries, take = META.unpack_from(frame.meta)
            counted = self._counted
            if (calls, retries) != counted:
                self._count_calls(calls - counted[0], retries - counted[1])
                self._counted = (calls, retries)
            if frame.tag in (b"E", b"D"):
                last = orjson.loads(frame.payload)
                if self._hand_back is not None:
                    self._hand_back([float(at) for at in last["sent"]])
                if frame.tag == b"E":
                    raise error_from_data(last)
        except BaseException:
            self._end()
            raise
        return frame, take

    def _read(self) -> Generator[list[Record]]:
        try:
            if not self._begun:
                self._begin()
            while True:
                frame, take = self._next()
                if frame.tag == b"P":
                    data = _page_data(frame.payload)  # the one decode
                    yield data if take == len(data) else data[:take]
                elif frame.tag == b"D":
                    return
                else:
                    raise ChannelBroken(f"the reading process sent an unknown frame {frame.tag!r}")
        finally:
            self._end()


def _page_data(raw: bytes) -> list[Record]:
    """The customers of a page the reading process paged through (with simdjson:
    `pagination.paging_view`); one that orjson refuses (where the two parsers differ)
    fails the read, saying so, instead of an unexplained decoding error."""
    try:
        data = orjson.loads(raw)["data"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise MalformedResponse(
            f"Stripe returned a page of GET /v1/customers that could not be decoded: {exc}"
        ) from exc
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise MalformedResponse(
            "Stripe returned a page of GET /v1/customers with no list of objects"
        )
    return data


def _start_child() -> tuple[subprocess.Popen[bytes], int]:
    """The reading process, and the read end of the pipe its frames come through."""
    package_root = str(Path(headwater.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, *_pythonpath()])}
    # glibc gives each thread that allocates an arena of its own: reading 300,000
    # customers the process peaked at 83-86 MB, at 69 MB with two arenas, for the same CPU.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    frames, frames_end = os.pipe()
    _widen(frames)
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


def _widen(fd: int) -> None:
    """Give the frames' pipe room for several pages (`PIPE_BYTES`), where the system
    allows it; else it keeps its default."""
    with suppress(OSError, AttributeError):  # AttributeError: not Linux
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


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


def _pythonpath() -> list[str]:
    value = os.environ.get("PYTHONPATH")
    return value.split(os.pathsep) if value else []
