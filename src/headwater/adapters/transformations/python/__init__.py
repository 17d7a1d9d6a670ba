"""Python transformations: ``def transform(customer: dict) -> dict | None``.

User code runs in separate worker processes (`pool`, `worker`), never in the server.
What is isolated, and how (also in docs/isolation.md):

- Process: each worker is a fresh interpreter started with ``python -I -S`` (no
  user site, no site-packages, no PYTHON* variables), an **empty environment**
  (so ``HEADWATER_SECRET_KEY`` and friends are not there, and ``/proc/self/environ``
  is empty) and no inherited file descriptors except its two pipes; the server's
  memory is never shared (fork + exec).  It cannot import Headwater.
- Network: the worker unshares its network namespace (``unshare(CLONE_NEWNET)``;
  when not root, with a user namespace if the kernel allows it), leaving it with
  no interfaces, not even a working loopback.  If no namespace can be made, the
  socket modules are removed, which is weak (a determined user can get them back).
- Files: when the server runs as root, the worker ``chroot``s into an empty
  directory and drops to a uid of its own (1,000,000 + pid), so no file of the host (data directory,
  metadata database, warehouse, secret key file, /proc) can be reached.  Not as
  root: only the working directory is an empty directory; files readable by the
  server's user stay readable (keep the data directory at mode 0700 and run the
  server as a dedicated user).
- Limits: address space (``memory_limit_mb``), lifetime CPU time (workers are
  recycled before reaching it), no new processes or threads (``RLIMIT_NPROC`` 0),
  no file writes (``RLIMIT_FSIZE`` 0), few open files, no core dumps, no new
  privileges, not dumpable/ptrace-able, killed if the server dies.  A seccomp
  filter (`seccomp`) refuses sockets, tracing, mounts, namespaces and signals to
  other processes, even to code that recovers ctypes.  No cgroups.
- Per batch: a wall-clock time limit; a worker over it is killed.  Built-ins,
  stdout/stderr, the recursion limit, tracing and timers are reset after every
  batch.  ``print`` output is captured (capped).
- Modules: the standard-library modules listed in `pool.PRELOAD` are loaded
  before the chroot and can be imported; others cannot (when chrooted).
"""

from __future__ import annotations

from headwater.adapters.transformations.python.pool import PythonTransformation
from headwater.adapters.transformations.python.validate import validate_python

__all__ = ["PythonTransformation", "compile_python", "validate_python"]


def compile_python(
    source: str,
    *,
    time_limit: float = 5.0,
    memory_limit_mb: int = 512,
    workers: int = 1,
    log_cap: int = 200,
) -> PythonTransformation:
    """Check `source`, then start the worker(s) that run it for one run.

    Raises `InvalidInput` (with the line) for a syntax error, a missing
    ``transform`` or top-level code that fails.
    """
    validate_python(source)
    return PythonTransformation(
        source,
        time_limit=time_limit,
        memory_limit_mb=memory_limit_mb,
        workers=workers,
        log_cap=log_cap,
    )
