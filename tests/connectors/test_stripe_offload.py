"""Full reads in a child process: counts, errors, and no process outliving its read."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import psutil
import pytest
from tests.connectors.conftest import source_for

from headwater.adapters.connectors.contract import PermissionMissing
from headwater.adapters.connectors.stripe import offload
from headwater.adapters.connectors.stripe.channel import error_from_data, error_to_data
from headwater.adapters.connectors.stripe.errors import (
    ApiFailure,
    InvalidKey,
    MalformedResponse,
    PaginationLoop,
    RetriesExhausted,
    SourceUnreachable,
    StripeRequestFailed,
)
from headwater.adapters.connectors.stripe.offload import ReaderDied
from headwater.kernel.errors import InvalidInput, TerminalError, TransientError
from headwater.sandbox.testing import RunningSandbox, start_sandbox

OFFLOAD = offload.CHILD_MODULE


def readers(parent: int | None = None) -> list[psutil.Process]:
    """Live reading processes started by `parent` (default: this process)."""
    found = []
    for child in psutil.Process(parent).children():
        with contextlib.suppress(psutil.Error):
            if OFFLOAD in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
    return found


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_errors_cross_as_data_and_come_back_as_the_same_class() -> None:
    failure = ApiFailure(503, "api_error", None, "busy", "req_1")
    errors: list[Exception] = [
        RetriesExhausted("Stripe GET /v1/customers kept failing", 7, failure),
        SourceUnreachable("Could not reach Stripe", 3, None),
        PermissionMissing("lacks Customers: Read", permission="Customers: Read"),
        InvalidKey("Stripe rejected the API key", failure),
        StripeRequestFailed("Stripe refused GET /v1/customers", failure),
        MalformedResponse("Stripe returned a malformed list"),
        PaginationLoop("Stripe pagination repeated the token cus_1"),
        InvalidInput("must be between 1 and 100", "page_size"),
        TransientError("try later"),
        TerminalError("never"),
    ]
    for error in errors:
        data = error_to_data(error)
        back = error_from_data(orjson.loads(orjson.dumps(data)))
        assert type(back) is type(error)
        assert str(back) == str(error)
        assert vars(back) == vars(error)
        assert back.transient == error.transient  # type: ignore[attr-defined]
    back = error_from_data(error_to_data(RetriesExhausted("gave up", 7, failure)))
    assert isinstance(back, RetriesExhausted)
    assert (back.attempts, back.last, back.transient) == (7, failure, True)


def test_an_unexpected_error_arrives_as_a_terminal_error_naming_it() -> None:
    error = RuntimeError("socket trouble")
    error.lock = threading.Lock()  # type: ignore[attr-defined]
    back = error_from_data(orjson.loads(orjson.dumps(error_to_data(error))))
    assert type(back) is TerminalError
    assert str(back) == "the Stripe reading process failed: RuntimeError: socket trouble"


def test_a_key_in_an_error_never_crosses_the_channel() -> None:
    data = error_to_data(RuntimeError("bad header Bearer sk_test_abcdefghijkl1234"))
    assert "sk_test_abcdefghijkl1234" not in orjson.dumps(data).decode()
    assert "sk_test_…1234" in str(error_from_data(data))


def test_a_read_in_a_child_counts_its_calls_and_leaves_no_process(
    big_sandbox: RunningSandbox,
) -> None:
    big_sandbox.reset_stats()
    with source_for(big_sandbox) as source:
        ids = [c["id"] for page in source.read_full() for c in page]
        calls = source.api_calls
    assert len(ids) == len(set(ids)) == 3000
    assert calls == big_sandbox.stats()["requests"] > 30
    assert readers() == []


def pipe_size(fd: int) -> int:
    return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)


def test_the_frames_pipe_holds_several_pages() -> None:
    """At Linux's default 64 KiB (less than a page of 100 customers) the two processes
    took turns at every page; the pipe now holds `PIPE_BYTES`."""
    allowed = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    if allowed < offload.PIPE_BYTES and os.geteuid() != 0:
        pytest.skip(f"this system lets a pipe hold at most {allowed} bytes")
    child, frames = offload._start_child()
    try:
        assert pipe_size(frames) >= offload.PIPE_BYTES > 64 << 10
    finally:
        child.kill()
        child.wait()
        os.close(frames)
        for stream in (child.stdin, child.stderr):
            if stream is not None:
                stream.close()


def test_a_pipe_the_system_will_not_widen_keeps_its_size_and_carries_the_read(
    big_sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = fcntl.fcntl
    refused: list[int] = []

    def refusing(fd: int, cmd: int, arg: int = 0) -> int:
        if cmd == fcntl.F_SETPIPE_SZ:
            refused.append(fd)
            raise PermissionError(errno.EPERM, "Operation not permitted")
        return real(fd, cmd, arg)

    monkeypatch.setattr(offload.fcntl, "fcntl", refusing)
    with source_for(big_sandbox) as source:
        ids = [c["id"] for page in source.read_full() for c in page]
    assert refused
    assert len(ids) == len(set(ids)) == 3000
    assert readers() == []


def test_faults_in_the_child_fail_the_read_with_the_original_error(
    sandbox: RunningSandbox,
) -> None:
    sandbox.control(error_rate=1.0)
    with source_for(sandbox, max_retries=1) as source, pytest.raises(RetriesExhausted) as info:
        list(source.read_full())
    assert "gave up after 2 attempts" in info.value.message
    assert info.value.last is not None
    assert info.value.last.status >= 500
    assert source.http.retries == 1
    assert readers() == []


def test_stopping_early_ends_the_reading_process(big_sandbox: RunningSandbox) -> None:
    with source_for(big_sandbox, workers=4) as source:
        pages = source.read_full()
        assert next(pages)
        (child,) = readers()
        pages.close()
    assert gone(child.pid)
    assert readers() == []


def test_a_reader_killed_midway_fails_the_read_clearly(big_sandbox: RunningSandbox) -> None:
    with source_for(big_sandbox, workers=1, requests_per_second=20.0) as source:
        pages = source.read_full()
        assert next(pages)
        (child,) = readers()
        os.kill(child.pid, signal.SIGKILL)
        with pytest.raises(ReaderDied, match=r"ended unexpectedly \(exit code -9\)"):
            list(pages)


PARENT = r"""
import sys, psutil
from headwater.adapters.connectors.stripe import StripeSettings, StripeSource
settings = StripeSettings(base_url=sys.argv[1], api_key=sys.argv[2], requests_per_second=5.0)
pages = StripeSource(settings).read_full()
next(pages)
print(psutil.Process().children()[0].pid, flush=True)
sys.stdin.read()
"""


def test_the_reader_dies_with_its_parent() -> None:
    """`kill -9` of a run must not leave its reading process behind."""
    with start_sandbox(customers=2000, seed=3, latency_ms=50) as sandbox:
        with subprocess.Popen(
            [sys.executable, "-c", PARENT, sandbox.url, sandbox.secret_key],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as parent:
            assert parent.stdout is not None
            reader = int(parent.stdout.readline())
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait()
        assert gone(reader), f"reader process {reader} outlived its parent"


def test_a_program_read_from_stdin_can_read_too(big_sandbox: RunningSandbox) -> None:
    """The reader never re-imports the parent's main module (here there is none)."""
    script = (
        "import sys\n"
        "from headwater.adapters.connectors.stripe import StripeSettings, StripeSource\n"
        f"s = StripeSettings(base_url={big_sandbox.url!r}, api_key={big_sandbox.secret_key!r},"
        " requests_per_second=500.0)\n"
        "print(sum(len(page) for page in StripeSource(s).read_full()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-"], input=script, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "3000"


MIDDLE = r"""
import subprocess, sys
grandchild = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(grandchild.pid, flush=True)
sys.stdin.read()
"""
WAITER = r"""
import os, time
from headwater.adapters.connectors.stripe.reading_process import _die_with
_die_with(os.getppid())
print("armed", flush=True)
time.sleep(60)  # idle: neither reading nor writing, so only the kernel can end it
"""


def test_an_idle_reader_is_killed_by_the_kernel_when_its_parent_dies() -> None:
    """PR_SET_PDEATHSIG, not a broken pipe, ends a reader that is waiting on Stripe."""
    with subprocess.Popen(
        [sys.executable, "-c", MIDDLE, WAITER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as parent:
        assert parent.stdout is not None
        waiter = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == "armed"  # it asked the kernel
        assert not gone(waiter, within=0.1)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    assert gone(waiter, within=10.0), f"process {waiter} outlived its parent"


def test_the_key_reaches_the_reader_only_through_its_channel(big_sandbox: RunningSandbox) -> None:
    key = "rk_test_customers_only"
    with source_for(big_sandbox, api_key=key, workers=1, requests_per_second=20.0) as source:
        pages = source.read_full()
        assert next(pages)
        (child,) = readers()
        visible = " ".join(child.cmdline()) + " ".join(
            f"{k}={v}" for k, v in child.environ().items()
        )
        pages.close()
    assert key not in visible
    assert "sk_test_sandbox" not in visible


def test_the_reading_process_starts_at_once_but_reads_only_when_asked(
    big_sandbox: RunningSandbox,
) -> None:
    """Its start-up overlaps the run's event position request, yet nothing is read
    before the run asks for the first page (rule 2: the position comes first)."""
    with source_for(big_sandbox) as source:
        big_sandbox.reset_stats()
        pages = source.read_full()
        (child,) = readers()
        time.sleep(0.5)  # the child is up and waiting
        assert big_sandbox.stats()["requests"] == 0
        asked = time.time()
        assert next(pages)
        first = min(admitted for admitted, _, _, _ in big_sandbox.timeline())
        assert first >= asked
        pages.close()
    assert gone(child.pid)


def test_a_read_never_started_ends_its_process_on_close(big_sandbox: RunningSandbox) -> None:
    with source_for(big_sandbox) as source:
        big_sandbox.reset_stats()
        pages = source.read_full()
        (child,) = readers()
        pages.close()
        assert gone(child.pid)
        pages.close()  # twice is harmless
        with pytest.raises(StopIteration):
            next(pages)
    assert big_sandbox.stats()["requests"] == 0


def test_closing_the_source_ends_a_read_left_open(big_sandbox: RunningSandbox) -> None:
    source = source_for(big_sandbox)
    started = source.read_full()
    assert next(started)
    never = source.read_created_since(0)
    children = readers()
    assert len(children) == 2
    source.close()
    assert all(gone(child.pid) for child in children)
    with pytest.raises(StopIteration):
        next(never)
