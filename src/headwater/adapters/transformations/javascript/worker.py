"""The JavaScript worker: one process holding the V8 isolate that runs user code.

`process` starts it as ``python -I -c <this file's text>`` with an empty environment
and only its two pipes, so it imports the standard library, ``py_mini_racer`` and
``orjson`` (never Headwater).  It must stay self-contained.

Why a process of its own: V8's heap limit does not cover ArrayBuffer backing stores
(nor WebAssembly memories), which live outside the heap.  Once the isolate is up,
before the user's top-level code runs, the worker caps its data segment
(``RLIMIT_DATA``: every private writable mapping, whatever allocated it) at what the
runtime already holds plus the memory limit; a
buffer that would pass it fails to allocate (the batch fails on the memory limit) and
a heap that cannot grow any more ends the process (the parent reports the memory
limit and starts a new worker for the next batch).

Protocol on stdin/stdout (fds 0-2 then point to /dev/null): frames of a 4-byte
big-endian length and a body.  First the parent sends the configuration (prelude,
source, limits); the worker builds the isolate and answers ``{"ok": true}`` or
``{"error": message, "where": "line n" | null}`` (and exits).  Then each frame is a
JSON array of records, answered with the prelude's ``{"out": [...], "errors": [...],
"logs": [...], "dropped": n}`` or with ``{"failed": "time" | "memory" | "runtime",
"detail": text}``; after a failure the isolate is thrown away and rebuilt from the
source for the next batch.

A batch over its time limit may have been spending that time on memory: V8 grows a
huge array or string step by step, collecting garbage as it nears the limit, and a
builtin such as ``Array.prototype.fill`` on ``new Array(1e9)`` does not stop when told
to.  So V8 gets `STOP_GRACE` to stop, and the batch fails on the memory limit when
the memory it held (the data segment past what the runtime held when capped) had
reached `NEAR_LIMIT` of the limit, or V8 did not stop and that memory grew by
`GROWING` of the limit during the grace; otherwise on the time limit (a loop, even one
making garbage, holds little or stops growing).  A V8 that did not stop is not waited
for: the reply says ``"exits": true`` and the worker exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import resource
import signal
import struct
import time
from collections.abc import Callable
from typing import Any

from py_mini_racer import (
    JSEvalException,
    JSFunction,
    JSOOMException,
    JSParseException,
    JSTimeoutException,
    MiniRacer,
    init_mini_racer,
)

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS = 1, 4, 22, 38
SECCOMP_MODE_FILTER = 2
CLONE_NEWNET, CLONE_NEWUSER = 0x40000000, 0x10000000
UID_BASE = 1_000_000  # above any account's uid; plus the worker's pid (as Python's)
#: Room on top of the memory limit for the batch's JSON text in both directions.
TEXT_ALLOWANCE_MB = 64
#: Share of the memory limit held that puts a batch over its time limit down to memory.
NEAR_LIMIT = 0.75
#: Seconds V8 gets to stop a batch over its time limit (see the module docstring).
STOP_GRACE = 1.0
#: Share of the memory limit that a V8 that did not stop must grow by in `STOP_GRACE`
#: for the batch to be put down to memory.
GROWING = 0.125
MB = 1024 * 1024
_LINE = re.compile(r"<anonymous>:(\d+):\s*(.*)")


class SourceError(Exception):
    """The user's code cannot be set up: a message and where (``line n``) if known."""

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.message, self.where = message, where


def read_frame(fd: int) -> bytes | None:
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">I", head)
    return _read_exact(fd, size) if size else b""


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, got = [], 0
    while got < size:
        chunk = os.read(fd, min(size - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def write_frame(fd: int, body: bytes) -> None:
    view = memoryview(struct.pack(">I", len(body)) + body)
    while view:
        view = view[os.write(fd, view) :]


def _source_error(exc: Exception, prefix: str = "") -> SourceError:
    """A V8 parse/eval error as a message naming the line."""
    first = str(exc).splitlines()[0] if str(exc) else "failed"
    match = _LINE.match(first)
    if match:
        return SourceError(prefix + match.group(2), f"line {match.group(1)}")
    return SourceError(prefix + first)


class Isolate:
    """The user's code compiled in a V8 context, rebuilt after a failed batch."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.time_limit = float(cfg["time_limit"])
        self.memory_mb = int(cfg["memory_mb"])
        self.ctx: MiniRacer | None = None
        self.base = 0  # the data segment when capped (`cap`)
        self.wedged = False  # V8 did not stop: the worker must exit after its reply
        self.abandoned: MiniRacer | None = None

    def cap(self) -> None:
        """Cap the process's memory at what it holds now plus the limit (`cap_memory`)."""
        self.base = cap_memory(self.memory_mb)

    def over_time(self) -> str:
        """Which limit a batch (or the top-level code) that ran out of time broke:
        ``"memory"`` or ``"time"`` (see the module docstring).  V8 is stopped, or
        marked wedged, when this returns."""
        ctx = self.ctx
        assert ctx is not None
        held = data_segment_bytes() - self.base
        try:  # a call queued behind the stopped one: it runs once V8 has stopped
            ctx.eval("0", timeout_sec=STOP_GRACE)
        except JSTimeoutException:
            self.wedged = True
        now = data_segment_bytes() - self.base
        growing = self.wedged and now - held >= GROWING * self.memory_mb * MB
        near = max(held, now) >= NEAR_LIMIT * self.memory_mb * MB
        return "memory" if ctx.was_hard_memory_limit_reached() or near or growing else "time"

    def build(self, ready: Callable[[], object] | None = None) -> None:
        """A new context running the user's code; `ready` is called just before that
        code first runs (main caps the process's memory there)."""
        ctx = MiniRacer()
        self.ctx = ctx
        ctx.set_hard_memory_limit(self.memory_mb * 1024 * 1024)
        ctx.eval(str(self.cfg["prelude"]))
        ctx.eval(f"__headwater__.setup({int(self.cfg['log_cap'])}, {int(self.cfg['max_chars'])})")
        if ready is not None:
            ready()
        try:
            ctx.eval(str(self.cfg["source"]), timeout_sec=self.time_limit)
        except JSParseException as exc:
            raise _source_error(exc) from None
        except JSTimeoutException:
            if self.over_time() == "memory":
                raise SourceError(
                    f"top-level code exceeded the memory limit of {self.memory_mb} MB"
                ) from None
            raise SourceError(
                f"top-level code did not finish within {self.time_limit:g} s"
            ) from None
        except JSOOMException:
            raise SourceError(
                f"top-level code exceeded the memory limit of {self.memory_mb} MB"
            ) from None
        except JSEvalException as exc:
            if ctx.was_hard_memory_limit_reached():
                raise SourceError(
                    f"top-level code exceeded the memory limit of {self.memory_mb} MB"
                ) from None
            raise _source_error(exc, "top-level code failed: ") from None
        try:  # within the limit: promise jobs the top-level code queued run here
            bound = ctx.eval("__headwater__.bind()", timeout_sec=self.time_limit)
        except JSTimeoutException:
            raise SourceError(
                f"top-level code did not finish within {self.time_limit:g} s"
            ) from None
        except JSEvalException as exc:  # a getter named transform that throws
            raise _source_error(exc, "top-level code failed: ") from None
        if bound is not True:
            raise SourceError("the code does not define a function named transform")

    def run(self, text: str) -> str | dict[str, Any]:
        """The prelude's reply for one batch, or ``{"failed": kind, "detail": ...}``."""
        if self.ctx is None:
            try:
                self.build()
            except SourceError as exc:
                return self.fail("runtime", f"could not restart: {exc.message}")
        ctx = self.ctx
        assert ctx is not None
        try:
            run = ctx.eval("__headwater__.run")
            if not isinstance(run, JSFunction):
                return self.fail("runtime", "the runtime lost its entry point")
            started = time.monotonic()
            reply = run(text, timeout_sec=self.time_limit)
            # Promise jobs the batch queued run on the next call into V8: now, within
            # this batch's time limit, not before the next batch (with no limit).
            left = self.time_limit - (time.monotonic() - started)
            ctx.eval("0", timeout_sec=max(left, 0.001))
        except JSTimeoutException:
            return self.fail(self.over_time())
        except JSOOMException:
            return self.fail("memory")
        except JSEvalException as exc:
            # Through a function call V8 reports a hit heap limit as a plain failure.
            if ctx.was_hard_memory_limit_reached():
                return self.fail("memory")
            return self.fail("runtime", str(exc).splitlines()[0] if str(exc) else "failed")
        if not isinstance(reply, str):
            return self.fail("runtime", "the runtime returned no result")
        if reply == '{"memory":true}':
            return self.fail("memory")
        return reply

    def fail(self, kind: str, detail: str = "") -> dict[str, Any]:
        self.discard()
        if self.wedged:
            return {"failed": kind, "detail": detail, "exits": True}
        return {"failed": kind, "detail": detail}

    def discard(self) -> None:
        if self.wedged:  # closing (even collecting) it would wait for V8 to stop: kept
            self.abandoned, self.ctx = self.ctx, None  # until the worker exits
        if self.ctx is not None:
            # A round trip first lets mini-racer deliver a cancelled call's last
            # callback; closing before that makes it fire on a closed event loop.
            with contextlib.suppress(Exception):
                self.ctx.eval("0", timeout_sec=1.0)
            self.ctx.close()
            self.ctx = None


#: This process's ``/proc/self/status``, opened before the chroot hides ``/proc``.
_STATUS: list[int] = []


def data_segment_bytes() -> int:
    """This process's private writable memory (``VmData``), which RLIMIT_DATA caps."""
    if not _STATUS:
        _STATUS.append(os.open("/proc/self/status", os.O_RDONLY))
    for line in os.pread(_STATUS[0], 1 << 16, 0).decode("ascii").splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
    return 0


def cap_memory(memory_mb: int) -> int:
    """Cap the data segment at what the runtime holds now plus the limit; return what
    it held."""
    base = data_segment_bytes()
    limit = base + (memory_mb + TEXT_ALLOWANCE_MB) * MB
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return base


def lock_down(program_hex: Any, root: str) -> None:
    """Before V8 starts (its threads inherit all of it): a network namespace of its own
    when one can be made; V8 loaded (its library and ICU data: all the files it reads)
    and the process confined to the empty directory `root` (`confine`); no new
    privileges, not dumpable, and the seccomp program the parent built (the Python
    workers' filter: sockets, tracing, mounts, chroot, namespaces, signals to other
    processes refused)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:  # not root: inside a user namespace, if allowed
        libc.unshare(CLONE_NEWUSER | CLONE_NEWNET)
    init_mini_racer(ignore_duplicate_init=True)  # reads its files; starts no thread
    data_segment_bytes()  # opens /proc/self/status while it can
    confine(libc, root)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if isinstance(program_hex, str):
        program = ctypes.create_string_buffer(bytes.fromhex(program_hex))

        class Program(ctypes.Structure):
            _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))

        fprog = Program(len(program.raw) // 8, ctypes.addressof(program))
        libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0)


def confine(libc: Any, root: str) -> None:
    """Chroot to `root` (as root, or as root of the user namespace `lock_down` made;
    refused where such namespaces come without capabilities: `root` is then only the
    working directory) and, as the machine's root, take a user id no account has, so
    that files are "other" to the worker and other processes are out of its reach."""
    try:
        os.chroot(root)
    except OSError:
        os.chdir(root)
        return
    os.chdir("/")
    if os.geteuid() == 0:
        uid = UID_BASE + os.getpid()
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # a new user id resets it
        if os.getppid() == 1:
            os._exit(1)  # the parent is already gone


def main() -> None:
    in_fd, out_fd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:
        os._exit(1)  # the parent is already gone
    first = read_frame(in_fd)
    if first is None:
        return
    import orjson

    cfg = json.loads(first)
    lock_down(cfg.get("seccomp"), str(cfg["root"]))
    isolate = Isolate(cfg)
    try:  # capped before the top-level code runs: what it allocates counts too
        isolate.build(ready=isolate.cap)
    except SourceError as exc:
        write_frame(out_fd, orjson.dumps({"error": exc.message, "where": exc.where}))
        if isolate.wedged:
            os._exit(0)
        return
    write_frame(out_fd, b'{"ok":true}')
    while (frame := read_frame(in_fd)) is not None:
        try:
            reply = isolate.run(frame.decode())
            body = reply.encode() if isinstance(reply, str) else orjson.dumps(reply)
        except MemoryError:
            write_frame(out_fd, b'{"failed":"memory","detail":""}')
            os._exit(3)
        write_frame(out_fd, body)
        if isolate.wedged:
            os._exit(0)


if __name__ == "__main__":
    main()
