"""The Python transformation worker: one sandboxed interpreter running user code.

`pool` starts it as ``python -I -S -c <codec's text, this file's text>`` with an empty
environment and no inherited file descriptors beyond its two pipes, so it imports only
the standard library (never Headwater).  It must stay self-contained: stdlib imports only.

Protocol on stdin/stdout (moved to other descriptors at start-up; fds 0-2 then point
to /dev/null so stray prints cannot corrupt it): frames of a 4-byte big-endian length
and a JSON body.  First the parent sends the configuration (source, limits, sandbox
root); the worker locks itself down (see `sandbox`), runs the top-level code and
answers ``{"ok": true, "sandbox": {...}}`` or ``{"error": ..., "line": n}``.  Then each
frame is ``{"id": text, "records": [...]}``, answered with ``{"out": [...], "errors":
[[i, msg]], "logs": [...], "dropped": n, "cpu": seconds, "id": text}``, or
``{"fatal": "memory"}`` after which the worker exits.  The echoed id lets the parent
tell the reply to this request from a frame user code wrote on the reply descriptor.
"""

from __future__ import annotations

import builtins
import json
import os
import resource
import signal
import struct
import sys
from collections.abc import Callable
from contextlib import suppress
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `codec` is the first part of this process's source (see `pool`)
    from headwater.adapters.transformations.python.codec import Dumps, load_codec, refused

FILENAME = "<transformation>"
UID_BASE = 1_000_000  # above any account's uid; plus the worker's pid
CLONE_NEWNET, CLONE_NEWUSER = 0x40000000, 0x10000000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS = 1, 4, 22, 38
SECCOMP_MODE_FILTER = 2
MEMORY_FRAME = b'{"fatal":"memory"}'
MAX_LINE = 2000


def read_frame(fd: int, unpack: Callable[..., tuple[Any, ...]] = struct.unpack) -> bytes | None:
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (size,) = unpack(">I", head)
    return _read_exact(fd, size) or b""


def _read_exact(fd: int, size: int, read: Callable[[int, int], bytes] = os.read) -> bytes | None:
    chunks, got = [], 0
    while got < size:
        chunk = read(fd, min(size - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def write_frame(
    fd: int,
    body: bytes,
    pack: Callable[..., bytes] = struct.pack,
    write: Callable[[int, Any], int] = os.write,
) -> None:
    # Functions bound at definition time: user code patching os or struct cannot reach them.
    view = memoryview(pack(">I", len(body)) + body)
    while view:
        view = view[write(fd, view) :]


def sandbox(cfg: dict[str, Any]) -> dict[str, str]:
    """Lock the process down before any user code runs; say what was applied."""
    import ctypes

    root, memory_mb, cpu_seconds = str(cfg["root"]), int(cfg["memory_mb"]), int(cfg["cpu_seconds"])
    libc = ctypes.CDLL(None, use_errno=True)
    done: dict[str, str] = {}
    is_root = os.geteuid() == 0
    flags = CLONE_NEWNET if is_root else CLONE_NEWUSER | CLONE_NEWNET
    isolated = libc.unshare(flags) == 0
    if isolated:
        done["network"] = "empty network namespace"
    else:
        for name in ("socket", "_socket", "ssl", "_ssl", "select", "selectors"):
            sys.modules[name] = None  # type: ignore[assignment]
        done["network"] = "socket modules removed (weak: no namespace available)"
    if is_root:
        os.chroot(root)
        os.chdir("/")
        # A user id of its own (no account has it): other workers, even of the same
        # server, cannot signal or trace this one, and files are "other" to it.
        uid = UID_BASE + os.getpid()
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        done["files"] = f"chroot to an empty directory, running as unprivileged uid {uid}"
    elif isolated and _chroot(root):  # root of a user namespace of its own: may chroot
        done["files"] = "chroot to an empty directory (in a user namespace of its own)"
    else:
        os.chdir(root)
        done["files"] = "working directory is an empty directory (weak: no chroot)"
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no ptrace/proc access by other workers
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after setuid, which resets it
    if os.getppid() == 1:
        os._exit(1)  # the parent is already gone
    limits = {
        resource.RLIMIT_AS: memory_mb * 1024 * 1024,
        resource.RLIMIT_CPU: cpu_seconds,
        resource.RLIMIT_NPROC: 0,  # no fork, no threads
        resource.RLIMIT_FSIZE: 0,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NOFILE: 16,
    }
    for which, value in limits.items():
        resource.setrlimit(which, (value, value))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writing a file fails, not kills
    done["limits"] = f"address space {memory_mb} MB, CPU {cpu_seconds} s, no processes"
    done["syscalls"] = install_filter(libc, cfg.get("seccomp"))
    for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]  # not importable again once chrooted
    return done


def _chroot(root: str) -> bool:
    try:  # refused where user namespaces come without capabilities (AppArmor)
        os.chroot(root)
    except OSError:
        return False
    os.chdir("/")
    return True


def install_filter(libc: Any, program_hex: Any) -> str:
    """Install the seccomp program the parent built (`seccomp.filter_program`)."""
    import ctypes

    if not isinstance(program_hex, str):
        return "no seccomp filter (weak: not available for this architecture)"
    program = ctypes.create_string_buffer(bytes.fromhex(program_hex))

    class Program(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))

    fprog = Program(len(program.raw) // 8, ctypes.addressof(program))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return f"no seccomp filter (weak: the kernel refused it, errno {ctypes.get_errno()})"
    return "seccomp filter: sockets, tracing, mounts, namespaces, signals to others refused"


def describe(exc: BaseException, caller: str = "transform") -> tuple[str, int | None]:
    """A one-line message for a user exception, and the user's line if known (not in
    the message: a record's error adds it, a top-level error is located by it)."""
    line = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    try:  # repr and str run user code (the exit code's, the exception's)
        if isinstance(exc, SystemExit):
            text = f"{caller} called exit({exc.code!r})"[:MAX_LINE]
        else:
            text = f"{type(exc).__name__}: {exc}"[:MAX_LINE]
    except BaseException:
        text = (
            f"{caller} called exit (its code could not be read)"
            if isinstance(exc, SystemExit)
            else f"{type(exc).__name__} (its message could not be read)"
        )
    return text, line


class Capture:
    """Stands in for sys.stdout/stderr during a batch; keeps at most `cap` lines."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.lines: list[str] = []
        self.partial = ""
        self.dropped = 0

    def write(self, text: Any) -> int:
        text = str(text)
        pieces = (self.partial + text).split("\n")
        self.partial = pieces.pop()[:MAX_LINE]
        for piece in pieces:
            self._line(piece)
        return len(text)

    def _line(self, line: str) -> None:
        if len(self.lines) < self.cap:
            self.lines.append(line[:MAX_LINE])
        else:
            self.dropped += 1

    def flush(self) -> None:
        return None

    def finish(self) -> tuple[list[str], int]:
        if self.partial:
            self._line(self.partial)
        return self.lines, self.dropped


def run_batch(
    fn: Callable[[Any], Any],
    records: list[Any],
    dumps: Dumps,
    cfg: dict[str, Any],
    restore: Callable[[], None],
    request_id: str,
    isinstance: Callable[[Any, Any], bool] = isinstance,
    len: Callable[[Any], int] = len,
) -> bytes:
    """Apply `fn` to each record; one JSON reply for the whole batch."""
    capture = Capture(int(cfg["log_cap"]))
    sys.stdout = sys.stderr = capture
    max_bytes = int(cfg["max_record_bytes"])
    parts: list[bytes] = []
    errors: list[list[Any]] = []
    for index, record in enumerate(records):
        part = b"null"
        try:
            result = fn(record)
            if isinstance(result, dict):
                try:
                    part = dumps(result)
                except (TypeError, ValueError) as exc:
                    why: Any = exc
                    if isinstance(exc, TypeError):  # what orjson refused: where
                        with suppress(RecursionError):  # a cycle
                            why = refused(result) or exc
                    errors.append([index, f"the returned dict is not JSON: {why}"])
                    parts.append(b"null")
                    continue
                if len(part) > max_bytes:
                    too = f"{len(part)} bytes of JSON, limit {max_bytes}"
                    errors.append([index, f"the returned dict is too large ({too})"])
                    part = b"null"
            elif result is not None:
                errors.append(
                    [index, f"transform must return a dict or None, not {type(result).__name__}"]
                )
        except MemoryError:
            raise
        except BaseException as exc:
            text, line = describe(exc)
            errors.append([index, f"{text} (line {line})" if line else text])
        parts.append(part)
    restore()  # before our own code runs again: user code may have patched builtins
    lines, dropped = capture.finish()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    tail = {
        "errors": errors,
        "logs": lines,
        "dropped": dropped,
        "cpu": usage.ru_utime + usage.ru_stime,
        "id": request_id,
    }
    try:
        end = dumps(tail)
    except (TypeError, ValueError):  # a lone surrogate in a line or message: escaped
        end = json.dumps(tail).encode()
    return b'{"out":[' + b",".join(parts) + b"]," + end[1:]


def load_zones(path: Any) -> None:
    """Serve ``zoneinfo`` from the parent's blob of the time-zone files (`pool._time_zones`),
    which the chroot hides: where no file is found, ZoneInfo asks `load_tzdata`."""
    import io
    import zoneinfo
    from zoneinfo import _common

    try:
        with open(str(path), "rb") as file:
            blob = file.read()
    except OSError:
        return
    size = int.from_bytes(blob[:4], "big")
    index, body = json.loads(blob[4 : 4 + size]), blob[4 + size :]

    def load_tzdata(key: str) -> io.BytesIO:
        if key not in index:
            raise zoneinfo.ZoneInfoNotFoundError(f"No time zone found with key {key}")
        start, length = index[key]
        return io.BytesIO(body[start : start + length])

    _common.load_tzdata = load_tzdata  # type: ignore[assignment]  # a BytesIO reads alike
    zoneinfo.available_timezones = lambda: set(index)


def start(cfg: dict[str, Any], out_fd: int) -> tuple[Callable[[Any], Any], dict[str, Any]]:
    """Lock down, then run the user's top-level code and find ``transform``."""
    for name in cfg["preload"]:  # `pool.PRELOAD`: all user code can import once chrooted
        __import__(name)
    load_zones(cfg.get("zones"))
    done = sandbox(cfg)
    namespace: dict[str, Any] = {"__name__": "transformation", "__builtins__": builtins}
    try:
        code = compile(str(cfg["source"]), FILENAME, "exec")
        exec(code, namespace)  # noqa: S102 - running user code is this process' purpose
    except BaseException as exc:
        message, line = describe(exc, "the top-level code")
        if not isinstance(exc, SystemExit):
            message = f"top-level code failed: {message}"
        if isinstance(exc, SyntaxError):
            message, line = f"SyntaxError: {exc.msg}", exc.lineno
        write_frame(out_fd, json.dumps({"error": message, "line": line}).encode())
        os._exit(0)
    fn = namespace.get("transform")
    if not callable(fn):
        write_frame(out_fd, b'{"error":"the code does not define a function named transform"}')
        os._exit(0)
    return fn, done


def make_restore() -> Callable[[], None]:
    """Snapshot interpreter state now; the returned function puts it back."""
    saved = dict(builtins.__dict__)
    out, err, limit = sys.stdout, sys.stderr, sys.getrecursionlimit()
    mapping, set_limit, set_timer, timers = (
        builtins.__dict__,
        sys.setrecursionlimit,
        (signal.setitimer),
        (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF),
    )
    settrace, setprofile, module = sys.settrace, sys.setprofile, sys

    def restore() -> None:
        mapping.clear()
        mapping.update(saved)
        module.stdout, module.stderr = out, err
        set_limit(limit)
        settrace(None)
        setprofile(None)
        for timer in timers:
            set_timer(timer, 0)

    return restore


def main() -> None:
    # Keep the protocol pipes on private descriptors; 0-2 become /dev/null.
    in_fd, out_fd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    first = read_frame(in_fd)
    if first is None:
        return
    cfg = json.loads(first)
    dumps, loads = load_codec(cfg.get("orjson_dir"))
    # Taken before any user code runs, so user code cannot swap them.
    restore, batch, read, write = make_restore(), run_batch, read_frame, write_frame
    exit_now = os._exit
    fn, done = start(cfg, out_fd)
    restore()  # what the top-level code changed in builtins does not last either
    write(out_fd, json.dumps({"ok": True, "sandbox": done}).encode())
    while (frame := read(in_fd)) is not None:
        try:
            request = loads(frame)
            reply = batch(fn, request["records"], dumps, cfg, restore, str(request["id"]))
        except MemoryError:
            reply = b""
        if not reply:
            restore()
            write(out_fd, MEMORY_FRAME)
            exit_now(3)
        write(out_fd, reply)


if __name__ == "__main__":
    main()
