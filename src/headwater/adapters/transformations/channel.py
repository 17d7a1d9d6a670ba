"""Talking to worker processes: framed messages with one deadline for many workers.

Used for the Python and the JavaScript workers alike.  A frame is a 4-byte
big-endian length and a body.  `exchange` sends one frame to each worker and
collects one reply frame from each, all multiplexed over non-blocking pipes, giving
up on whatever is unfinished at the deadline.  Workers run untrusted code, so their
replies are size-capped and a dead or silent worker is a failure with a reason,
never a hang.

A reply is exactly one frame.  User code may reach the worker's reply pipe (Python's
``os.write`` on its descriptor), and a byte written beside a reply shifts every later
reply onto the wrong request: so bytes after a reply frame, or waiting in the pipe
before a request is sent, make that exchange a failure (the caller replaces the
worker), never the start of the next reply.  What was written while a request was
being answered can still come first and look like the reply; callers make each reply
name its request to catch that (the Python worker echoes an id).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import struct
import subprocess
import time
from dataclasses import dataclass, field

#: Largest reply frame accepted from a worker.
MAX_REPLY = 256 * 1024 * 1024
_CHUNK = 1 << 20
#: Why a worker's pipe no longer lines up with its requests.
STRAY_WRITE = "(something in it wrote to its reply pipe)"


@dataclass(eq=False)
class _Job:
    proc: subprocess.Popen[bytes]
    out: memoryview
    buf: bytearray = field(default_factory=bytearray)
    result: bytes | str | None = None  # str = why it failed


def exchange(
    jobs: list[tuple[subprocess.Popen[bytes], bytes]], deadline: float, limit_text: str
) -> list[bytes | str]:
    """Send each payload to its worker and return each reply, or why there is none.

    `limit_text` is the failure reason used for workers still busy at `deadline`.
    """
    sel = selectors.DefaultSelector()
    pending: list[_Job] = []
    for proc, payload in jobs:
        assert proc.stdin is not None
        assert proc.stdout is not None
        job = _Job(proc, memoryview(struct.pack(">I", len(payload)) + payload))
        job.result = _stray_bytes(proc.stdout.fileno())
        if job.result is not None:  # not sent: its reply could not be told apart
            pending.append(job)
            continue
        for pipe, event in (
            (proc.stdin, selectors.EVENT_WRITE),
            (proc.stdout, selectors.EVENT_READ),
        ):
            os.set_blocking(pipe.fileno(), False)
            sel.register(pipe.fileno(), event, job)
        pending.append(job)
    try:
        while any(job.result is None for job in pending):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, mask in sel.select(left):
                job = key.data
                if job.result is None:
                    _step(job, key.fd, mask)
                if job.result is not None:
                    for fd in _fds(job):
                        if fd in sel.get_map():
                            sel.unregister(fd)
    finally:
        sel.close()
    return [limit_text if job.result is None else job.result for job in pending]


def _fds(job: _Job) -> list[int]:
    assert job.proc.stdin is not None
    assert job.proc.stdout is not None
    return [job.proc.stdin.fileno(), job.proc.stdout.fileno()]


def _step(job: _Job, fd: int, mask: int) -> None:
    if mask & selectors.EVENT_WRITE and job.out:
        try:
            job.out = job.out[os.write(fd, job.out[:_CHUNK]) :]
        except (BrokenPipeError, ConnectionResetError):
            job.result = exit_reason(job.proc)
        return
    if not mask & selectors.EVENT_READ:
        return
    chunk = os.read(fd, _CHUNK)
    if not chunk:
        job.result = exit_reason(job.proc)
        return
    job.buf += chunk
    if len(job.buf) < 4:
        return
    (size,) = struct.unpack(">I", job.buf[:4])
    if size > MAX_REPLY:
        job.result = f"the worker's reply is too large ({size} bytes, limit {MAX_REPLY})"
    elif len(job.buf) > 4 + size:
        job.result = (
            f"the worker wrote {len(job.buf) - 4 - size} bytes after its reply {STRAY_WRITE}"
        )
    elif len(job.buf) == 4 + size:
        job.result = bytes(job.buf[4:])


def _stray_bytes(fd: int) -> str | None:
    """Why a worker cannot be sent a request: bytes it wrote outside a reply are
    waiting in its pipe (they would be read as the reply), or None."""
    os.set_blocking(fd, False)
    try:
        stray = os.read(fd, _CHUNK)
    except BlockingIOError:
        return None
    if not stray:
        return None  # the pipe is closed: sending or reading will say why
    return f"the worker wrote {len(stray)} bytes outside a reply, before the request {STRAY_WRITE}"


def exit_reason(proc: subprocess.Popen[bytes]) -> str:
    """Why a worker stopped talking: its exit code or the signal that killed it."""
    try:
        code = proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        return "the worker closed its pipe but did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = {
            "SIGXCPU": " (CPU time limit)",
            "SIGSEGV": " (often a stack overflow from deep recursion, or the memory limit)",
            "SIGABRT": " (often the memory limit)",
        }.get(name, "")
        return f"the worker process was killed by {name}{hint}"
    return f"the worker process exited with code {code} (e.g. os._exit was called)"


def stop_worker(proc: subprocess.Popen[bytes], grace: float = 0.0) -> None:
    """End a worker process (politely first when `grace` > 0: EOF on its stdin ends
    its loop), kill it if it is still there, reap it and close its pipes."""
    if grace > 0 and proc.poll() is None:
        assert proc.stdin is not None
        proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None and not pipe.closed:
            pipe.close()
