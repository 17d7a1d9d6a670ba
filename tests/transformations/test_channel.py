"""The framed channel to worker processes: a reply is one frame, nothing more.

A worker runs untrusted code that may reach its reply pipe; bytes beside a reply
frame mean the pipe no longer lines up with the requests, so the worker is reported
as failed instead of its stray bytes being read as the answer to a later request.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time

import pytest

from headwater.adapters.transformations.channel import exchange, stop_worker

# A worker that answers each request frame with `reply` (a frame), after writing
# `early` (raw bytes) before it has read any request.
WORKER = """
import os, struct, sys
early, reply = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2])
if early:
    os.write(1, early)
while True:
    head = os.read(0, 4)
    if len(head) < 4:
        break
    (size,) = struct.unpack(">I", head)
    got = b""
    while len(got) < size:
        got += os.read(0, size - len(got))
    os.write(1, reply)
"""


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def worker(early: bytes, reply: bytes) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-c", WORKER, early.hex(), reply.hex()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def ask(proc: subprocess.Popen[bytes]) -> bytes | str:
    [reply] = exchange([(proc, b"request")], time.monotonic() + 5, "too slow")
    return reply


def test_a_reply_frame_is_read_whole() -> None:
    proc = worker(b"", frame(b"answer"))
    try:
        assert ask(proc) == b"answer"
        assert ask(proc) == b"answer"
    finally:
        stop_worker(proc)


@pytest.mark.parametrize("extra", [frame(b"forged"), b"x"])
def test_bytes_after_a_reply_fail_the_worker(extra: bytes) -> None:
    """Bytes following a complete reply frame were left in the pipe and read as
    (the start of) the reply to the next request."""
    proc = worker(b"", frame(b"answer") + extra)
    try:
        reply = ask(proc)
        assert reply == (
            f"the worker wrote {len(extra)} bytes after its reply "
            "(something in it wrote to its reply pipe)"
        )
    finally:
        stop_worker(proc)


def test_bytes_waiting_before_a_request_fail_the_worker() -> None:
    """Bytes already in the pipe when a request is sent were read as its reply."""
    stray = frame(b"forged")
    proc = worker(stray, frame(b"answer"))
    try:
        # The stray bytes are in the pipe before the request.
        assert select.select([proc.stdout], [], [], 5)[0]
        reply = ask(proc)
        assert reply == (
            f"the worker wrote {len(stray)} bytes outside a reply, before the request "
            "(something in it wrote to its reply pipe)"
        )
    finally:
        stop_worker(proc)
