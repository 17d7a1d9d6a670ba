"""Hostile Python transformation code: each attack is contained, the next batch runs.

Every source below does its attack when the record says ``{"evil": true}`` and a
harmless transform otherwise, so each test checks both the containment and that
the same transformation keeps working afterwards.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
import psutil
import pytest

import headwater
from headwater.adapters.transformations.contract import BatchFailed
from headwater.adapters.transformations.python import PythonTransformation, compile_python
from headwater.kernel.errors import InvalidInput
from headwater.kernel.records import TransformFailure

GOOD = [{"evil": False, "email": "A@B.COM"}]
EVIL = [{"evil": True, "email": "A@B.COM"}]


def hostile(attack: str) -> str:
    body = "\n".join("        " + line for line in attack.strip().splitlines())
    return (
        "import os, sys, json\n"
        "def transform(c):\n"
        "    if c['evil']:\n"
        f"{body}\n"
        "    return {'email': c['email'].lower()}\n"
    )


def start(attack: str, time_limit: float = 3.0) -> PythonTransformation:
    return compile_python(hostile(attack), time_limit=time_limit, memory_limit_mb=256)


def assert_recovers(t: PythonTransformation) -> None:
    assert t.transform(GOOD) == [{"email": "a@b.com"}]


def batch_failure(t: PythonTransformation, records: list[dict[str, object]]) -> str:
    with pytest.raises(BatchFailed) as caught:
        t.transform(records)
    return caught.value.message


def test_infinite_loop_hits_the_time_limit() -> None:
    with start("while True:\n    pass", time_limit=1.0) as t:
        message = batch_failure(t, EVIL + GOOD)
        assert message == "Python transformation, batch 1: time limit of 1 s exceeded"
        assert_recovers(t)


def test_memory_bomb_hits_the_memory_limit() -> None:
    with start("x = []\nwhile True:\n    x.append(bytearray(10**8))") as t:
        assert "memory limit of 256 MB exceeded" in batch_failure(t, EVIL)
        assert_recovers(t)


def test_huge_return_values() -> None:
    with start("return {'x': 'a' * int(c['size'])}") as t:
        [big] = t.transform([{"evil": True, "size": 2_000_000}])
        assert isinstance(big, TransformFailure)
        assert "too large" in big.message
        assert "memory limit" in batch_failure(t, [{"evil": True, "size": 10**9}])
        assert_recovers(t)


def test_fork_bomb_cannot_start_processes() -> None:
    with start("while True:\n    os.fork()") as t:
        [result] = t.transform(EVIL)
        assert isinstance(result, TransformFailure)
        assert result.message.startswith("BlockingIOError")
        [pid] = t.pids()
        assert psutil.Process(pid).children() == []
        assert_recovers(t)


def test_deep_recursion() -> None:
    attack = "def f(n):\n    return f(n + 1)\nif c.get('unlimited'):\n"
    attack += "    sys.setrecursionlimit(10**7)\n    x = []\n    for _ in range(10**6):\n"
    attack += "        x = [x]\n    repr(x)\nreturn f(0)"
    with compile_python(hostile(attack), time_limit=10.0) as t:
        [result] = t.transform(EVIL)
        assert isinstance(result, TransformFailure)
        assert result.message.startswith("RecursionError")
        # With the recursion limit lifted the C stack overflows: the worker dies.
        assert "killed by SIGSEGV" in batch_failure(t, [{"evil": True, "unlimited": True}])
        assert_recovers(t)


@pytest.mark.parametrize("exit_call", ["os._exit(0)", "os.kill(os.getpid(), 9)"])
def test_hard_exit_fails_the_batch_only(exit_call: str) -> None:
    with start(exit_call) as t:
        message = batch_failure(t, EVIL)
        assert "the worker process" in message
        assert_recovers(t)


def test_secret_key_and_environment_are_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "hw-test-secret-0123456789abcdef"
    monkeypatch.setenv("HEADWATER_SECRET_KEY", secret)
    attack = """
found = {"env": dict(os.environ)}
for path in ("/proc/self/environ", "/proc/%d/environ" % os.getppid(), "/proc/1/environ"):
    try:
        found[path] = open(path, "rb").read().decode("latin-1")
    except Exception as exc:
        found[path] = repr(exc)
return {"found": found}
"""
    with start(attack) as t:
        [result] = t.transform(EVIL)
    assert isinstance(result, dict)
    assert set(result["found"]["env"]) <= {"LC_CTYPE"}  # set by Python itself
    assert secret not in orjson.dumps(result).decode()


@pytest.mark.skipif(os.geteuid() != 0, reason="without root there is no chroot (documented)")
def test_data_directory_is_unreadable(tmp_path: Path) -> None:
    data = tmp_path / "home"
    data.mkdir(mode=0o700)
    (data / "secret.key").write_text("top-secret-key-material")
    attack = "return {'key': open(c['path']).read(), 'ls': os.listdir(c['dir'])}"
    with start(attack) as t:
        [result] = t.transform([{"evil": True, "path": str(data / "secret.key"), "dir": "/"}])
        assert isinstance(result, TransformFailure)
        assert "top-secret" not in result.message
        # the chroot's root (mode 0700, root's) cannot even be traversed by the worker
        assert result.message.startswith("PermissionError: [Errno 13] Permission denied")
        [listing] = t.transform([{"evil": True, "path": "/dev/null", "dir": "/"}])
        assert isinstance(listing, TransformFailure)
        assert listing.message.startswith("PermissionError: [Errno 13] Permission denied")


def test_network_is_unreachable() -> None:
    attack = "import socket\nsocket.create_connection(('127.0.0.1', 5432), timeout=1)"
    with start(attack) as t:
        [result] = t.transform(EVIL)
        assert isinstance(result, TransformFailure)
        # the socket module is there (empty network namespace); seccomp refuses the call
        assert result.message == "PermissionError: [Errno 1] Operation not permitted (line 5)"
        assert_recovers(t)


def test_headwater_cannot_be_imported() -> None:
    src = str(Path(headwater.__file__).parent.parent)
    attack = "sys.path.insert(0, c['src'])\nimport headwater\nreturn {'x': headwater.__file__}"
    with start(attack) as t:
        [result] = t.transform([{"evil": True, "src": src}])
        assert isinstance(result, TransformFailure)
        assert result.message.startswith("ModuleNotFoundError: No module named 'headwater'")


def test_patching_builtins_and_modules_does_not_outlive_the_batch() -> None:
    source = """
import builtins, os, struct
def transform(c):
    if c.get("evil"):
        builtins.len = lambda value: 42
        builtins.print = None
        builtins.isinstance = lambda *args: False
        os.read = os.write = struct.pack = None
        sys.stdout = None
        return {"n": len("abc")}
    print("len is", len("abc"))
    return {"n": len("abc")}
import sys
"""
    with compile_python(source) as t:
        assert t.transform([{"evil": True}]) == [{"n": 42}]
        assert t.transform([{}]) == [{"n": 3}]
        assert t.logs() == ["len is 3"]


def test_top_level_infinite_loop_is_rejected_at_compile() -> None:
    with pytest.raises(InvalidInput, match="did not finish within 1 s"):
        compile_python("while True:\n    pass\ndef transform(c):\n    pass\n", time_limit=1.0)


def test_the_server_process_is_unaffected() -> None:
    limits = resource.getrlimit(resource.RLIMIT_AS), resource.getrlimit(resource.RLIMIT_NPROC)
    cwd, pid = Path.cwd(), os.getpid()
    with start("os._exit(1)") as t:
        assert "exited with code 1" in batch_failure(t, EVIL)
        assert_recovers(t)
    assert (resource.getrlimit(resource.RLIMIT_AS), resource.getrlimit(resource.RLIMIT_NPROC)) == (
        limits
    )
    assert (Path.cwd(), os.getpid()) == (cwd, pid)
    assert os.fork is not None  # nothing was patched in this interpreter


# Issue 17 §8: ctypes, removed from sys.modules, is still reachable through the
# garbage collector; with it, raw system calls.  The seccomp filter refuses them.
_RAW_SYSCALL = """
import gc
ns = next(o for o in gc.get_objects() if isinstance(o, dict) and "CDLL" in o and "get_errno" in o)
libc = ns["CDLL"](None, use_errno=True)
got = libc.syscall(*c["call"])
if got < 0:
    raise OSError(ns["get_errno"](), "refused")
return {"got": got}
"""
# (number on x86_64, number on aarch64, arguments)
_CALLS = {
    "socket": (41, 198, [2, 1, 0]),  # AF_INET, SOCK_STREAM
    "ptrace": (101, 117, [0, 0, 0, 0]),  # PTRACE_TRACEME
    "unshare": (272, 97, [0x10000000]),  # CLONE_NEWUSER
    "process_vm_readv": (310, 270, [1, 0, 0, 0, 0, 0]),
    "kill_parent": (62, 129, ["ppid", 0]),
    "mount": (165, 40, [0, 0, 0, 0, 0]),
}


@pytest.mark.skipif(
    os.uname().machine not in ("x86_64", "aarch64"), reason="filter written for x86_64/aarch64"
)
@pytest.mark.parametrize("name", list(_CALLS))
def test_raw_system_calls_are_refused(name: str) -> None:
    x86, arm, args = _CALLS[name]
    number = x86 if os.uname().machine == "x86_64" else arm
    call = [number] + [os.getpid() if a == "ppid" else a for a in args]
    with start(_RAW_SYSCALL) as t:
        assert "seccomp" in t.sandbox["syscalls"]
        [result] = t.transform([{"evil": True, "email": "", "call": call}])
        assert result == TransformFailure("PermissionError: [Errno 1] refused (line 9)")
        assert_recovers(t)  # the same worker, not a replacement
        assert len(t.pids()) == 1
    assert psutil.pid_exists(os.getpid())


def test_the_worker_may_still_signal_itself() -> None:
    with start("os.kill(os.getpid(), 9)") as t:
        first = t.pids()
        assert "killed by SIGKILL" in batch_failure(t, EVIL)
        assert_recovers(t)
        assert t.pids() != first


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_filter_names_every_call_on_each_architecture(machine: str) -> None:
    from headwater.adapters.transformations.python import seccomp

    program = seccomp.filter_program(4242, machine)
    size = len(program) // 8
    assert len(program) % 8 == 0
    x86_only = {"iopl", "ioperm"}
    denied = len(seccomp.DENIED) - (len(x86_only) if machine == "aarch64" else 0)
    foreign_abi_check = 2 if machine == "x86_64" else 0
    assert size == 4 + foreign_abi_check + 2 * denied + 5 * len(seccomp.SELF_ONLY) + 1
    assert size < 4096  # the kernel's limit for one program
    assert not seccomp.supported("riscv64")


NOT_ROOT = """
import json, os, sys
from headwater.adapters.transformations.python import compile_python
source = '''
import os
def transform(c):
    found = {}
    for path in (c["file"], "/proc/%d/environ" % os.getppid(), "/proc/self/status"):
        try:
            found[path] = open(path, "rb").read().decode("latin-1")
        except Exception as exc:
            found[path] = repr(exc)
    return {"found": found}
'''
t = compile_python(source, time_limit=5.0, memory_limit_mb=256)
print(json.dumps({"out": t.transform([{"file": sys.argv[1]}]), "sandbox": t.sandbox}))
t.close()
"""


AS_NOBODY = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
]


def _interpreter_for_nobody() -> str:
    """This Python, or the system's of the same version when this one is out of the
    other user's reach (pyenv under /root, mode 0700)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/{version}"):
        probe = [*AS_NOBODY, "/bin/sh", "-c", f'exec "{candidate}" -c pass']  # exec'd as it
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            return candidate
    pytest.skip(f"no {version} that user 65534 may run")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a server as another user")
def test_a_server_not_running_as_root_keeps_its_files_and_environment(tmp_path: Path) -> None:
    """A server running as an ordinary user (here `nobody`) with user namespaces: the
    worker is chrooted in a namespace of its own.  It used to keep every file the
    server's user can read (the data directory: the store, the key file) and the
    server's environment (``/proc/<server>/environ``, holding
    ``HEADWATER_SECRET_KEY``) within reach of user code."""
    shared = Path(tempfile.mkdtemp(prefix="hw-notroot-"))
    try:
        shared.chmod(0o755)
        key_file = shared / "secret.key"
        key_file.write_text("top-secret-key-material")
        key_file.chmod(0o644)
        env = {"PATH": "/usr/bin:/bin", "HEADWATER_SECRET_KEY": "hw-env-secret-0123456789"}
        site = [p for p in sys.path if p.endswith("site-packages")]
        env["PYTHONPATH"] = ":".join([str(Path(headwater.__file__).parent.parent), *site])
        done = subprocess.run(
            [*AS_NOBODY, _interpreter_for_nobody(), "-c", NOT_ROOT, str(key_file)],
            capture_output=True,
            text=True,
            env=env,
            cwd=shared,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "top-secret" not in done.stdout
        assert "hw-env-secret" not in done.stdout
        result = json.loads(done.stdout)
        [out] = result["out"]
        assert all(v.startswith("FileNotFoundError") for v in out["found"].values()), out
        assert result["sandbox"]["files"].startswith("chroot to an empty directory")
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_user_code_cannot_lift_the_size_limits() -> None:
    """The worker's own checks run beside user code, which can reach them: raising the
    per-record limit in the worker's configuration (it holds from the next batch) or
    writing past the capture's line length was kept.  The server now holds the reply
    to those limits itself."""
    attack = (
        "sys._getframe(1).f_locals['cfg']['max_record_bytes'] = 10 ** 12\n"
        "sys.stdout.lines.append('y' * 100_000)\n"
        "return {'email': 'x' * 3_000_000}"
    )
    with start(attack) as t:
        t.transform(EVIL)  # lifts the limit for the batches after it
        t.logs()
        big, good = t.transform(EVIL + GOOD)
        assert isinstance(big, TransformFailure)
        assert big.message.startswith("the returned dict is too large (3000012 bytes")
        assert good == {"email": "a@b.com"}
        assert [len(line) for line in t.logs()] == [2001]


@pytest.mark.parametrize(
    "attack",
    [
        "class Code:\n    def __repr__(self):\n        raise ValueError('no')\n"
        "raise SystemExit(Code())",
        "class Code:\n    def __repr__(self):\n        raise SystemExit(1)\nsys.exit(Code())",
    ],
)
def test_an_exit_code_that_cannot_be_shown_fails_only_its_record(attack: str) -> None:
    """``exit(code)`` is described with the code's repr, which ran unguarded: a repr
    that raised ended the worker and failed the whole batch."""
    with start(attack) as t:
        bad, good = t.transform(EVIL + GOOD)
        assert isinstance(bad, TransformFailure)
        assert bad.message.startswith("transform called exit")
        assert good == {"email": "a@b.com"}
