"""The Python transformation: a pool of sandboxed worker processes (see `worker`).

Each worker is a fresh interpreter (``python -I -S``) with an empty environment and
only its two pipes; the records of a batch are split over the workers and sent as
one JSON frame each.  A worker that exceeds the batch time limit is killed (the
batch fails on the memory limit instead when its address space had reached
`NEAR_LIMIT` of it: a value grown step by step, not a loop); one that
runs out of memory, crashes or exits is reaped; either way the batch raises
`BatchFailed` and a new worker is started (from the same source) when the next
batch comes.  Workers are also recycled before they can reach their lifetime CPU
limit.  User code can write to the worker's reply descriptor: each request carries a
fresh random id that its reply must echo, so a forged or stale frame fails the batch
(and the worker) instead of being taken as another batch's results (see `channel`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from headwater.adapters.transformations import replies
from headwater.adapters.transformations.channel import STRAY_WRITE, exchange, stop_worker
from headwater.adapters.transformations.contract import BatchFailed, CappedLog
from headwater.adapters.transformations.python import seccomp
from headwater.adapters.transformations.python.worker import MEMORY_FRAME
from headwater.kernel.errors import InvalidInput
from headwater.kernel.records import Outcome, Record

#: Largest JSON form, in bytes, of one record's result.
MAX_RECORD_BYTES = 1 << 20
_RECORD_LIMIT = replies.SizeLimit(MAX_RECORD_BYTES, "bytes", "dict")
#: Time allowed for a worker's interpreter to start, on top of the time limit.
STARTUP_ALLOWANCE = 3.0
_F_SETPIPE_SZ = 1031  # Linux fcntl
_MIN_CHUNK = 64  # records; smaller batches are not worth splitting over workers
#: Share of the memory limit a worker over the time limit must hold (address space,
#: which RLIMIT_AS caps) for the batch to fail on memory rather than on time.
NEAR_LIMIT = 0.75
#: A worker over the time limit holding this share of the memory limit is watched for
#: up to MEMORY_GRACE seconds more before it is killed: reaching NEAR_LIMIT or its own
#: MemoryError then fails the batch on memory.  One holding less is killed at once.
WATCHED, MEMORY_GRACE = 0.25, 1.0
_MEMORY_EXIT = 3  # the worker's exit code after reporting a MemoryError
#: Modules a worker imports before its chroot: all that user code can import there,
#: with what they import lazily on first use (``_strptime`` for ``strptime``, the
#: codecs looked up by name), which the chroot would otherwise refuse.
PRELOAD = [
    "_strptime", "base64", "calendar", "codecs", "collections", "copy", "dataclasses",
    "datetime", "decimal", "email.utils", "enum", "fractions", "functools", "hashlib", "html",
    "ipaddress", "itertools", "json", "math", "operator", "random", "re", "statistics",
    "string", "textwrap", "time", "typing", "unicodedata", "urllib.parse", "uuid", "zoneinfo",
    "encodings.ascii", "encodings.latin_1", "encodings.cp1250", "encodings.cp1251",
    "encodings.cp1252", "encodings.iso8859_15", "encodings.mac_roman", "encodings.utf_8_sig",
    "encodings.utf_16", "encodings.utf_16_le", "encodings.utf_16_be", "encodings.utf_32",
    "encodings.utf_32_le", "encodings.utf_32_be", "encodings.idna", "encodings.punycode",
    "encodings.unicode_escape", "encodings.raw_unicode_escape", "encodings.hex_codec",
    "encodings.base64_codec",
]  # fmt: skip


#: The worker's source files, in order (`_worker_source`).
_SOURCES = ("codec.py", "worker.py")


@cache
def _worker_source() -> str:
    """`codec` then `worker`: one module's text (the second's future import dropped:
    such an import is allowed only at the start)."""
    codec, worker = (Path(__file__).with_name(n).read_text("utf-8") for n in _SOURCES)
    return codec + "\n" + worker.replace("from __future__ import annotations\n", "", 1)


class _BadReply(Exception):
    pass


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen[bytes]
    sandbox: dict[str, str]
    cpu: float = 0.0

    def stop(self, grace: float = 0.0) -> None:
        """End the process (politely first when `grace` > 0) and reap it."""
        stop_worker(self.proc, grace)


class PythonTransformation:
    """A compiled Python transformation (see the package docstring for isolation)."""

    def __init__(
        self,
        source: str,
        *,
        time_limit: float = 5.0,
        memory_limit_mb: int = 512,
        workers: int = 1,
        log_cap: int = 200,
    ) -> None:
        if time_limit <= 0 or memory_limit_mb < 64 or workers < 1 or log_cap < 0:
            raise InvalidInput("need time_limit > 0, memory_limit_mb >= 64, workers >= 1")
        self._time_limit = time_limit
        self._memory = memory_limit_mb
        self._root = tempfile.mkdtemp(prefix="headwater-py-")
        zones = Path(self._root, "zones")  # read by the workers before their chroot
        zones.write_bytes(_time_zones())
        self._cpu_budget = max(60, int(time_limit * 20))
        self._config: dict[str, Any] = {
            "source": source,
            "root": self._root,
            "memory_mb": memory_limit_mb,
            "cpu_seconds": self._cpu_budget,
            "log_cap": log_cap,
            "max_record_bytes": MAX_RECORD_BYTES,
            "orjson_dir": _orjson_dir(),
            "preload": PRELOAD,
            "zones": str(zones),
        }
        self._workers: list[_Worker | None] = [None] * workers
        # Workers die with the server anyway (PDEATHSIG); this also covers a
        # transformation dropped without close() in a long-lived server.
        self._finalizer = weakref.finalize(self, _shutdown, self._workers, self._root)
        self._logs = CappedLog(log_cap)
        self._batch = 0
        try:
            self._workers[0] = self._spawn(on_error=InvalidInput)
        except BaseException:
            self.close()
            raise

    @property
    def sandbox(self) -> dict[str, str]:
        """What isolation the first live worker got (network, files, limits)."""
        live = [w for w in self._workers if w is not None]
        return dict(live[0].sandbox) if live else {}

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [w.proc.pid for w in self._workers if w is not None]

    def _spawn(self, on_error: type[InvalidInput] | type[BatchFailed]) -> _Worker:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _worker_source()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={},
            cwd=self._root,
            close_fds=True,
            start_new_session=True,
        )
        for pipe in (proc.stdin, proc.stdout):
            # Bigger pipes: a batch crosses in a few writes instead of dozens.
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, 1 << 20)  # type: ignore[union-attr]
        deadline = time.monotonic() + self._time_limit + STARTUP_ALLOWANCE
        limit = f"the top-level code did not finish within {self._time_limit:g} s"
        config = dict(self._config, seccomp=_seccomp_hex(proc.pid))
        reply = exchange([(proc, orjson.dumps(config))], deadline, limit)[0]
        worker = _Worker(proc, {})
        try:
            if isinstance(reply, str):
                raise on_error(reply)
            try:  # user text: it may hold a lone surrogate (see `replies`)
                data, _strict = replies.decode(reply)
            except replies.MalformedReply as exc:
                raise on_error(str(exc)) from None
            if not isinstance(data, dict) or data.get("ok") is not True:
                error = data.get("error") if isinstance(data, dict) else None
                line = data.get("line") if isinstance(data, dict) else None
                message = replies.message(error or "the worker failed to start")
                if on_error is InvalidInput and isinstance(line, int):
                    raise InvalidInput(message, f"line {line}")
                raise on_error(f"line {line}: {message}" if isinstance(line, int) else message)
            worker.sandbox = {str(k): str(v) for k, v in dict(data["sandbox"]).items()}
        except BaseException:
            worker.stop()
            raise
        return worker

    def transform(self, records: Sequence[Record]) -> list[Outcome]:
        self._batch += 1
        if not records:
            return []
        rows = list(records)
        count = min(len(self._workers), max(1, len(rows) // _MIN_CHUNK))
        step = -(-len(rows) // count)
        chunks = [rows[i : i + step] for i in range(0, len(rows), step)]
        workers = [self._live(i) for i in range(len(chunks))]
        ids = [secrets.token_hex(8) for _ in chunks]
        deadline = time.monotonic() + self._time_limit
        limit = f"time limit of {self._time_limit:g} s exceeded"
        replies = exchange(
            [
                (w.proc, orjson.dumps({"id": i, "records": chunk}))
                for w, i, chunk in zip(workers, ids, chunks, strict=True)
            ],
            deadline,
            limit,
        )
        outcomes: list[Outcome] = []
        failure: str | None = None
        for index, (reply, chunk) in enumerate(zip(replies, chunks, strict=True)):
            try:
                if isinstance(reply, str):
                    raise _BadReply(self._over_time(workers[index]) if reply == limit else reply)
                outcomes += self._parse(reply, len(chunk), workers[index], ids[index])
            except _BadReply as exc:
                failure = failure or str(exc)
                workers[index].stop()
                self._workers[index] = None
        if failure is not None:
            raise BatchFailed(failure, runtime="Python transformation", batch=self._batch)
        self._recycle()
        return outcomes

    def _over_time(self, worker: _Worker) -> str:
        """Which limit a worker still busy at the deadline broke (it is not killed yet):
        a value grown step by step under a short time limit is still growing then."""
        limit, proc = self._memory * 1024 * 1024, worker.proc
        size, end = _address_space(proc.pid), time.monotonic() + MEMORY_GRACE
        watched = size >= WATCHED * limit
        while watched and size < NEAR_LIMIT * limit and time.monotonic() < end:
            if proc.poll() is not None:
                break
            time.sleep(0.02)
            size = _address_space(proc.pid)
        if size >= NEAR_LIMIT * limit or (watched and proc.poll() == _MEMORY_EXIT):
            return f"memory limit of {self._memory} MB exceeded"
        return f"time limit of {self._time_limit:g} s exceeded"

    def _live(self, index: int) -> _Worker:
        worker = self._workers[index]
        if worker is None or worker.proc.poll() is not None:
            if worker is not None:
                worker.stop()
            try:
                worker = self._spawn(on_error=BatchFailed)
            except BatchFailed as exc:
                raise BatchFailed(
                    f"could not start a worker: {exc.message}",
                    runtime="Python transformation",
                    batch=self._batch,
                    records_at_fault=False,
                ) from None
            self._workers[index] = worker
        return worker

    def _parse(self, reply: bytes, count: int, worker: _Worker, request_id: str) -> list[Outcome]:
        """Check a worker's reply (untrusted: user code could have written it)."""
        try:
            got = replies.read(reply, count, "not a dict", _RECORD_LIMIT)
        except replies.MalformedReply as exc:
            if reply == MEMORY_FRAME:  # the worker's own report: a MemoryError
                raise _BadReply(f"memory limit of {self._memory} MB exceeded") from None
            raise _BadReply(str(exc)) from None
        if got.fields.get("id") != request_id:
            raise _BadReply(f"the worker's reply does not answer this batch {STRAY_WRITE}")
        self._logs.add(got.logs, got.dropped)
        cpu = got.fields.get("cpu")
        worker.cpu = float(cpu) if isinstance(cpu, int | float) else worker.cpu
        return got.outcomes

    def _recycle(self) -> None:
        """Replace workers before they can hit their lifetime CPU limit mid-batch."""
        for index, worker in enumerate(self._workers):
            if worker is not None and worker.cpu > self._cpu_budget / 2:
                worker.stop(grace=1.0)
                self._workers[index] = None

    def logs(self) -> list[str]:
        """Captured ``print`` output since the last call (at most ``log_cap`` lines)."""
        return self._logs.take()

    def close(self) -> None:
        """Stop every worker (they are gone when this returns) and remove the sandbox."""
        self._finalizer()

    def __enter__(self) -> PythonTransformation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shutdown(workers: list[_Worker | None], root: str) -> None:
    for index, worker in enumerate(workers):
        if worker is not None:
            worker.stop(grace=1.0)
            workers[index] = None
    shutil.rmtree(root, ignore_errors=True)


def _seccomp_hex(pid: int) -> str | None:
    """The worker's seccomp program (see `seccomp`), or None on another architecture."""
    machine = os.uname().machine
    return seccomp.filter_program(pid, machine).hex() if seccomp.supported(machine) else None


@cache
def _time_zones() -> bytes:
    """The system's time-zone files (`zoneinfo.TZPATH`) as one blob for the workers'
    ``zoneinfo``, whose chroot hides them (`worker.load_zones`): a 4-byte length, a
    JSON index ``{name: [start, size]}``, then the files' bytes (an alias shares its
    target's).  Read once per process."""
    import zoneinfo

    index: dict[str, tuple[int, int]] = {}
    seen: dict[Path, tuple[int, int]] = {}
    data = bytearray()
    for base in map(Path, zoneinfo.TZPATH):
        for path in sorted(base.rglob("*")) if base.is_dir() else []:
            name = path.relative_to(base).as_posix()
            if name in index or name.startswith(("posix/", "right/")) or not path.is_file():
                continue
            target = path.resolve()
            if target not in seen:
                body = target.read_bytes()
                if not body.startswith(b"TZif"):
                    continue  # zone.tab, tzdata.zi, leap seconds
                seen[target] = (len(data), len(body))
                data += body
            index[name] = seen[target]
    head = orjson.dumps(index)
    return len(head).to_bytes(4, "big") + head + bytes(data)


def _orjson_dir() -> str | None:
    """The directory holding the orjson package, for the worker's faster JSON."""
    origin: Any = getattr(orjson, "__file__", None)
    return str(Path(origin).parent.parent) if origin else None


def _address_space(pid: int) -> int:
    """A process's address space in bytes (``VmSize``), 0 if it cannot be read."""
    with (
        contextlib.suppress(OSError, ValueError),
        open(f"/proc/{pid}/status", encoding="ascii") as status,
    ):
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0
