"""The channel between the reading process and the run: exact under stop/continue."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import psutil
import pytest
from tests.connectors.conftest import source_for

from headwater.adapters.connectors.stripe import channel, offload
from headwater.sandbox.testing import RunningSandbox, start_sandbox

#: Enough customers for a few hundred frames of about 70 KB each.
CUSTOMERS = 20_000


@pytest.fixture(scope="module")
def large_sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=CUSTOMERS, seed=21) as sandbox:
        yield sandbox


def reading_child(parent: int) -> psutil.Process | None:
    for child in psutil.Process(parent).children():
        with contextlib.suppress(psutil.Error):
            if offload.CHILD_MODULE in child.cmdline():
                return child
    return None


@contextlib.contextmanager
def stopping_and_continuing(send: Callable[[int], None]) -> Iterator[list[int]]:
    """Send SIGSTOP then SIGCONT over and over (every few ms) until the block ends."""
    done = threading.Event()
    rounds: list[int] = []

    def loop() -> None:
        while not done.is_set():
            with contextlib.suppress(ProcessLookupError):
                send(signal.SIGSTOP)
                time.sleep(0.002)
                send(signal.SIGCONT)
                rounds.append(1)
            time.sleep(0.003)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield rounds
    finally:
        done.set()
        thread.join()


def test_stopping_and_continuing_the_reader_loses_nothing(large_sandbox: RunningSandbox) -> None:
    with source_for(large_sandbox, workers=4) as source:
        pages = source.read_full()
        ids = [c["id"] for c in next(pages)]
        child = reading_child(os.getpid())
        assert child is not None

        def send(sig: int) -> None:
            os.kill(child.pid, sig)

        with stopping_and_continuing(send) as rounds:
            ids += [c["id"] for page in pages for c in page]
    assert len(rounds) > 20
    assert len(ids) == len(set(ids)) == CUSTOMERS


RUN = r"""
import json, sys
from headwater.adapters.connectors.stripe import StripeSettings, StripeSource
settings = StripeSettings(base_url=sys.argv[1], api_key=sys.argv[2], requests_per_second=500.0)
ids = []
with StripeSource(settings) as source:
    pages = source.read_full()
    ids += [c["id"] for c in next(pages)]
    print("reading", flush=True)
    ids += [c["id"] for page in pages for c in page]
print(json.dumps({"count": len(ids), "distinct": len(set(ids))}), flush=True)
"""


def test_ctrl_z_then_fg_on_the_run_loses_nothing(large_sandbox: RunningSandbox) -> None:
    """SIGSTOP/SIGCONT to the run's process group, as a terminal's Ctrl-Z and `fg` do."""
    with subprocess.Popen(
        [sys.executable, "-c", RUN, large_sandbox.url, large_sandbox.secret_key],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a shell job
    ) as run:
        assert run.stdout is not None
        assert run.stderr is not None
        assert run.stdout.readline().strip() == "reading"

        def send(sig: int) -> None:
            os.killpg(run.pid, sig)

        with stopping_and_continuing(send) as rounds:
            out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert len(rounds) > 20
    assert json.loads(out) == {"count": CUSTOMERS, "distinct": CUSTOMERS}


@contextlib.contextmanager
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    try:
        yield read_end, write_end
    finally:
        for fd in (read_end, write_end):
            with contextlib.suppress(OSError):
                os.close(fd)


def test_a_frame_larger_than_the_pipe_arrives_whole() -> None:
    payload = os.urandom(300_000)  # several times a pipe's 64 KB buffer
    with pipe() as (read_end, write_end):
        writer = threading.Thread(
            target=channel.write_frame, args=(write_end, b"P", payload, b"fixed")
        )
        writer.start()
        frame = channel.read_frame(read_end)
        channel.write_frame(write_end, b"D")
        writer.join()
        os.close(write_end)
        assert frame == channel.Frame(b"P", b"fixed".ljust(channel.META_SIZE, b"\0"), payload)
        assert channel.read_frame(read_end) == channel.Frame(b"D", bytes(channel.META_SIZE), b"")
        assert channel.read_frame(read_end) is None  # the stream ended between frames


def framed(payload: bytes) -> bytes:
    with pipe() as (read_end, write_end):
        channel.write_frame(write_end, b"P", payload, b"\1")
        os.close(write_end)
        return os.read(read_end, 1 << 16)


def test_a_frame_cut_short_is_a_transport_error() -> None:
    whole = framed(b'{"data": []}')
    for cut in (3, len(whole) - 1):  # inside the header, inside the payload
        with pipe() as (read_end, write_end):
            os.write(write_end, whole[:cut])
            os.close(write_end)
            with pytest.raises(channel.ChannelBroken, match="cut short"):
                channel.read_frame(read_end)


def test_a_damaged_frame_is_a_transport_error_never_a_decode_error() -> None:
    whole = framed(b'{"data": [{"id": "cus_1"}]}')
    # A damaged length reads past the frame (here: to the end of the stream); damage
    # anywhere else fails the checksum.
    damage = {2: "cut short", 9: "corrupt", 12: "corrupt", len(whole) - 5: "corrupt"}
    for at, error in damage.items():  # length, tag, fixed fields, payload
        damaged = bytearray(whole)
        damaged[at] ^= 0x20
        with pipe() as (read_end, write_end):
            os.write(write_end, damaged + whole)
            os.close(write_end)
            with pytest.raises(channel.ChannelBroken, match=error):
                channel.read_frame(read_end)
    huge = (channel.MAX_FRAME + 1).to_bytes(4, "little") + bytes(29)
    with pipe() as (read_end, write_end):
        os.write(write_end, huge)
        with pytest.raises(channel.ChannelBroken, match="declares"):
            channel.read_frame(read_end)
