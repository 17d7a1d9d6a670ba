"""JavaScript transformations: a user's ``transform(customer)`` run in V8.

The code runs in a V8 isolate (PyPI ``mini-racer``) held by a worker process of its
own (`worker`; the server's side is `process`).  What that gives and does not give:

- No file, network, process or module access: a bare V8 context has none of
  ``require``, ``process``, ``fetch``, ``XMLHttpRequest`` or ``import()`` of files.
  mini-racer's own ``setTimeout``/``clearTimeout`` (and ``Atomics.waitAsync`` beneath
  them) and ``FinalizationRegistry`` are removed, and the promise jobs a batch
  queued are run before its reply, so no code can be left to run between batches,
  outside the time limit.
- Each batch has a wall-clock time limit.  Memory is bounded twice: V8's hard heap
  limit, and the worker's data segment (``RLIMIT_DATA``), which also covers
  ArrayBuffer and WebAssembly memory (kept outside V8's heap).  When a limit trips,
  the batch fails with `BatchFailed` naming the limit and the batch, and the context
  (or the whole worker) is rebuilt from the source for the next batch.  The server's
  process never holds the user's data, only the batch's JSON.
- ``console.log`` (and ``info``/``warn``/``error``/``debug``) is captured, capped.
- Deep recursion ends in V8's ``RangeError`` and is a per-record error.

Records cross to the worker as ONE JSON text per batch in each direction; the source
is compiled once per context, not per record.
"""

from __future__ import annotations

from headwater.adapters.transformations.javascript.process import (
    MAX_RECORD_CHARS,
    JavaScriptTransformation,
)

__all__ = [
    "MAX_RECORD_CHARS",
    "JavaScriptTransformation",
    "compile_javascript",
    "validate_javascript",
]


def compile_javascript(
    source: str, *, time_limit: float = 5.0, memory_limit_mb: int = 256, log_cap: int = 200
) -> JavaScriptTransformation:
    """Compile `source` (which must define ``transform(customer)``) for a run."""
    return JavaScriptTransformation(
        source, time_limit=time_limit, memory_limit_mb=memory_limit_mb, log_cap=log_cap
    )


def validate_javascript(source: str) -> None:
    """Check `source` at save time: raise `InvalidInput` (with the line) when it has a
    syntax error, its top-level code fails, or it defines no ``transform`` function.

    The top-level code does run, in a throw-away worker with the usual limits; it has
    no I/O, so that is safe.
    """
    compile_javascript(source, time_limit=2.0, memory_limit_mb=128, log_cap=0).close()
