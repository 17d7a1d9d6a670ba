"""The server's side of a JavaScript transformation: one worker process per run.

The worker (`worker`) holds the V8 isolate; this side starts it, sends it batches
as one JSON frame each over its pipes (`channel.exchange`, with a deadline), checks
the replies and turns a failed batch into `BatchFailed` (which limit, which batch).
A worker that dies (the memory limit reached inside V8, a V8 crash) or overruns the
deadline is killed and reaped; the next batch gets a new one, built from the source.
Only this thread talks to the worker: one batch at a time, no callbacks.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import orjson

from headwater.adapters.transformations import replies
from headwater.adapters.transformations.channel import exchange, stop_worker
from headwater.adapters.transformations.contract import BatchFailed, CappedLog
from headwater.adapters.transformations.python import seccomp
from headwater.kernel.errors import InvalidInput
from headwater.kernel.records import Outcome, Record

#: Largest JSON text, in characters, one record's result may have.
MAX_RECORD_CHARS = 1 << 20
_RECORD_LIMIT = replies.SizeLimit(MAX_RECORD_CHARS, "characters", "object")
#: Time allowed for the worker to start (interpreter, V8) on top of the time limit.
STARTUP_ALLOWANCE = 5.0
#: How long past the time limit the parent waits before killing a silent worker
#: (the worker enforces the limit itself; this covers a wedged one).
DEADLINE_GRACE = 2.0
_F_SETPIPE_SZ = 1031  # Linux fcntl
_NOT_OBJECT = "transform must return an object or null (its toJSON gave something else)"
# How V8 ends a process whose heap cannot grow under the data-segment limit.
_OUT_OF_MEMORY_SIGNALS = {signal.SIGTRAP, signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS}


@cache
def _worker_source() -> str:
    return Path(__file__).with_name("worker.py").read_text(encoding="utf-8")


@cache
def _empty_root() -> str:
    """The empty directory the workers of this process chroot to (not writable, not
    even by its owner; removed when the process exits)."""
    path = Path(tempfile.mkdtemp(prefix="headwater-js-root-"))
    path.chmod(0o500)
    atexit.register(_remove_root, path)
    return str(path)


def _remove_root(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


@cache
def _prelude() -> str:
    return Path(__file__).with_name("prelude.js").read_text(encoding="utf-8")


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen[bytes]

    def stop(self, grace: float = 0.0) -> None:
        """End the process (politely first when `grace` > 0) and reap it."""
        stop_worker(self.proc, grace)


class JavaScriptTransformation:
    """A compiled JavaScript transformation (see the package docstring)."""

    def __init__(
        self,
        source: str,
        *,
        time_limit: float = 5.0,
        memory_limit_mb: int = 256,
        log_cap: int = 200,
    ) -> None:
        if time_limit <= 0 or memory_limit_mb <= 0 or log_cap < 0:
            raise InvalidInput("time_limit and memory_limit_mb must be positive")
        self._time_limit = time_limit
        self._memory = memory_limit_mb
        self._config = {
            "prelude": _prelude(),
            "source": source,
            "time_limit": time_limit,
            "memory_mb": memory_limit_mb,
            "log_cap": log_cap,
            "max_chars": MAX_RECORD_CHARS,
            "root": _empty_root(),
        }
        self._logs = CappedLog(log_cap)
        self._batch = 0
        self._holder: list[_Worker | None] = [None]
        # A worker dies with the server anyway (PDEATHSIG); this also covers a
        # transformation dropped without close() in a long-lived server.
        self._finalizer = weakref.finalize(self, _shutdown, self._holder)
        self._holder[0] = self._spawn(on_error=InvalidInput)

    def pid(self) -> int | None:
        """Process id of the live worker, if any."""
        worker = self._holder[0]
        return worker.proc.pid if worker is not None else None

    def _spawn(self, on_error: type[InvalidInput] | type[BatchFailed]) -> _Worker:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _worker_source()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # V8's fatal-error dumps
            env={},
            close_fds=True,
            start_new_session=True,
        )
        for pipe in (proc.stdin, proc.stdout):
            # Bigger pipes: a batch crosses in a few writes instead of dozens.
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, 1 << 20)  # type: ignore[union-attr]
        worker = _Worker(proc)
        deadline = time.monotonic() + self._time_limit + STARTUP_ALLOWANCE
        limit = f"top-level code did not finish within {self._time_limit:g} s"
        config = orjson.dumps(dict(self._config, seccomp=_seccomp_hex(proc.pid)))
        reply = exchange([(proc, config)], deadline, limit)[0]
        if isinstance(reply, str) and (name := _out_of_memory(proc)) is not None:
            reply = (
                f"top-level code exceeded the memory limit of {self._memory} MB"
                f" (V8 stopped with {name})"
            )
        try:  # user text: it may hold a lone surrogate (see `replies`)
            data = replies.decode(reply)[0] if isinstance(reply, bytes) else {"error": reply}
        except replies.MalformedReply as exc:
            data = {"error": str(exc)}
        if not isinstance(data, dict) or data.get("ok") is not True:
            worker.stop()
            error = data.get("error") if isinstance(data, dict) else None
            where = data.get("where") if isinstance(data, dict) else None
            message = replies.message(error or "the JavaScript worker failed to start")
            if on_error is InvalidInput:
                raise InvalidInput(message, str(where) if where else None)
            raise BatchFailed(f"{where}: {message}" if where else message)
        return worker

    def transform(self, records: Sequence[Record]) -> list[Outcome]:
        self._batch += 1
        if not records:
            return []
        worker = self._live()
        deadline = time.monotonic() + self._time_limit + DEADLINE_GRACE
        limit = f"time limit of {self._time_limit:g} s exceeded"
        [reply] = exchange([(worker.proc, orjson.dumps(list(records)))], deadline, limit)
        if isinstance(reply, str):
            self._drop(worker)
            raise self._fail(self._lost_reason(worker, reply))
        try:
            got = replies.read(reply, len(records), _NOT_OBJECT, _RECORD_LIMIT)
        except replies.MalformedReply as exc:
            failed = _failure(reply)
            if failed is None:
                self._drop(worker)  # its glue was tampered with: start afresh
                raise self._fail(str(exc)) from None
            kind, detail, exits = failed
            if exits:  # V8 did not stop (a builtin deaf to it): the worker is exiting
                self._drop(worker)
            raise self._fail(self._reason(kind, detail)) from None
        self._logs.add(got.logs, got.dropped)
        return got.outcomes

    def _live(self) -> _Worker:
        worker = self._holder[0]
        if worker is not None and worker.proc.poll() is None:
            return worker
        if worker is not None:
            self._drop(worker)
        try:
            worker = self._spawn(on_error=BatchFailed)
        except BatchFailed as exc:
            why = f"could not start the runtime: {exc.message}"
            raise self._fail(why, records_at_fault=False) from None
        self._holder[0] = worker
        return worker

    def _drop(self, worker: _Worker) -> None:
        worker.stop()
        self._holder[0] = None

    def _reason(self, failed: str, detail: str) -> str:
        if failed == "time":
            return f"time limit of {self._time_limit:g} s exceeded"
        if failed == "memory":
            return f"memory limit of {self._memory} MB exceeded"
        return f"runtime failure ({replies.message(detail)})"  # what user code threw

    def _lost_reason(self, worker: _Worker, reason: str) -> str:
        """Why the worker gave no reply: a crash of V8 is how its heap runs out."""
        name = _out_of_memory(worker.proc)
        if name is not None:
            return f"memory limit of {self._memory} MB exceeded (V8 stopped with {name})"
        return reason

    def _fail(self, why: str, *, records_at_fault: bool = True) -> BatchFailed:
        return BatchFailed(
            why,
            runtime="JavaScript transformation",
            batch=self._batch,
            records_at_fault=records_at_fault,
        )

    def logs(self) -> list[str]:
        """Captured console output since the last call (at most ``log_cap`` lines)."""
        return self._logs.take()

    def close(self) -> None:
        """Stop the worker (it is gone when this returns)."""
        self._finalizer()


def _seccomp_hex(pid: int) -> str | None:
    """The worker's seccomp program (the Python workers' filter, but for `socketpair`:
    mini-racer's event loop wakes itself through one), or None on another architecture."""
    machine = os.uname().machine
    if not seccomp.supported(machine):
        return None
    return seccomp.filter_program(pid, machine, allow=("socketpair",)).hex()


def _out_of_memory(proc: subprocess.Popen[bytes]) -> str | None:
    """The signal that ended the worker if it is how V8 stops out of memory, or None."""
    code = proc.returncode
    if code is not None and code < 0 and -code in _OUT_OF_MEMORY_SIGNALS:
        return signal.Signals(-code).name
    return None


def _failure(reply: bytes) -> tuple[str, str, bool] | None:
    """The worker's own report of a failed batch (``{"failed": ..., "detail": ...}``:
    a limit reached, and ``"exits": true`` when the worker exits after it), or None."""
    try:
        data = orjson.loads(reply)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("failed") is None:
        return None
    return str(data["failed"]), str(data.get("detail")), data.get("exits") is True


def _shutdown(holder: list[_Worker | None]) -> None:
    worker = holder[0]
    if worker is not None:
        worker.stop(grace=1.0)
        holder[0] = None
