"""A live run's lease, renewed by a timer, and the requests that stop it.

Concurrency boundary: `LeaseKeeper` runs one thread per live run ("headwater-lease").
That thread does only two things: it renews the run's lease in the store every tenth
of the lease's length, whatever the run is doing (waiting a minute on Stripe's
`Retry-After` is being alive), and it sets the run's `RunStop` when a renewal finds a
cancel request or finds that the run is no longer ours (closed as lost).  Between
renewals it reads the run's cancel request alone every `CANCEL_CHECK_SECONDS` (one
read by key, no write), so that a cancel asked in another process (`runs cancel` from
a shell, a console on another `serve`) stops the run within that, not a lease beat
(3 s by default, and the run's page on top: up to about 5 s).  It never
touches counters, the warehouse or the pipeline.  The engine's thread reads `RunStop`
at batch boundaries (`Writer.submit`).  A failed renewal (store locked or unreachable)
is logged and retried at the next beat: the lease outlasts several missed beats.
A cancel asked in the process holding the run (`serve` answers the API and runs runs
in one process) need not wait for that beat: `cancel_here` sets the run's `RunStop` at
once, found in this process's live runs (`_HELD`, under `_HELD_LOCK`).
"""

from __future__ import annotations

import contextvars
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine

from headwater.adapters.store import runs
from headwater.adapters.store.database import describe_error, store_error
from headwater.adapters.store.runs import this_host
from headwater.adapters.warehouse.contract import ModelChanged
from headwater.kernel.entities import RunStatus, utcnow
from headwater.kernel.errors import HeadwaterError, TransientError
from headwater.services.runs.logcontext import in_this_context

log = logging.getLogger(__name__)


def new_owner() -> str:
    """This process's identity as a run's owner: host, pid and a random token."""
    return f"{this_host()}:{os.getpid()}:{secrets.token_hex(4)}"


class RunStop:
    """Why a live run must stop at its next batch boundary, if it must.

    Set from the lease thread or a signal handler, read by the engine's thread; the
    first request wins.  What the next boundary could wait long for (a source waiting on
    Stripe) is interrupted by a listener (`when_requested`), called on a thread of its
    own, so that a request from a signal handler only starts a thread.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.status = RunStatus.CANCELLED
        self.message = ""
        #: `time.monotonic()` until which the lease last renewed holds (the lease thread
        #: moves it); past it the run must assume it lost the lease, even before the
        #: lease thread could ask the store (a process paused past its lease wakes up
        #: with both threads racing: the batch boundary must not win that race).
        self.lease_deadline = math.inf
        self._listeners: list[Callable[[], None]] = []

    def when_requested(self, listener: Callable[[], None]) -> None:
        """Call `listener` once a stop is requested (at once if it was)."""
        with self._lock:
            if not self._event.is_set():
                self._listeners.append(listener)
                return
        _notify([listener])

    def request(self, status: RunStatus, message: str) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self.status, self.message = status, message
            self._event.set()
            listeners, self._listeners = self._listeners, []
        _notify(listeners)

    def is_set(self) -> bool:
        if not self._event.is_set() and time.monotonic() > self.lease_deadline:
            self.request(
                RunStatus.FAILED,
                "the run's lease lapsed while this process was stalled; "
                "it stopped without writing more",
            )
        return self._event.is_set()

    def ending(self, exc: Exception, run_id: str) -> tuple[RunStatus, str, bool]:
        """How run `run_id`, which raised `exc`, ends, and whether it may be retried.
        With a stop requested, as that stop: `exc` is its `RunStopped`, or the error of
        a wait the stop interrupted (`when_requested`).  Otherwise it failed."""
        if self.is_set():
            return self.status, self.message, False
        if isinstance(exc, HeadwaterError):
            return RunStatus.FAILED, exc.message, isinstance(exc, TransientError)
        store = store_error(exc)  # locked or away: the service retries the run
        if store is not None:
            return RunStatus.FAILED, store.message, True
        log.error("run %s failed", run_id, exc_info=exc)  # a surprise: with its traceback
        return RunStatus.FAILED, describe_error(exc), False


def transient_summary(exc: Exception) -> dict[str, bool]:
    """What the summary of a run that `exc` failed as transient (`RunStop.ending`)
    records: ``transient`` (the service retries it, `retries.retry_after`) and, when a
    Customer Model change refused its writes (`ModelChanged`), ``model_changed`` too:
    the one cause `pipelines run` retries when it executes the run itself, and its
    message alone would not say so (`retries.retry_model_change`)."""
    if isinstance(exc, ModelChanged):
        return {"transient": True, "model_changed": True}
    return {"transient": True}


def _notify(listeners: list[Callable[[], None]]) -> None:
    """Call each listener on a thread of its own; a failure is logged."""

    def call(listener: Callable[[], None]) -> None:
        try:
            listener()
        except Exception as exc:  # the boundary still stops the run
            log.warning("interrupting a stopped run's wait failed: %s", describe_error(exc))

    for listener in listeners:
        run = contextvars.copy_context().run  # the run's ids on the lines it logs
        thread = threading.Thread(target=run, args=(call, listener), name="headwater-stop")
        thread.daemon = True
        thread.start()


#: The `RunStop` of each run whose lease this process holds now, by run id.
_HELD: dict[str, RunStop] = {}
_HELD_LOCK = threading.Lock()
CANCELLED = "cancelled on request"
#: How often the lease thread reads its run's cancel request between renewals: a cancel
#: asked in another process takes effect within this and the run's page.
CANCEL_CHECK_SECONDS = 0.5


def cancel_here(run_id: str) -> bool:
    """Stop run `run_id` now if this process holds it (its cancel was stored first);
    whether it does.  Another process's run sees the request at its next beat."""
    with _HELD_LOCK:
        stop = _HELD.get(run_id)
    if stop is None:
        return False
    stop.request(RunStatus.CANCELLED, CANCELLED)
    return True


class LeaseKeeper:
    """Renews one run's lease from its own thread until stopped (see the module doc)."""

    def __init__(
        self, engine: Engine, run_id: str, owner: str, lease: timedelta, stop: RunStop
    ) -> None:
        self.engine = engine
        self.run_id = run_id
        self.owner = owner
        self.lease = lease
        self.stop = stop
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=in_this_context(self._beat), name="headwater-lease", daemon=True
        )

    def __enter__(self) -> LeaseKeeper:
        self.stop.lease_deadline = time.monotonic() + self.lease.total_seconds()
        with _HELD_LOCK:
            _HELD[self.run_id] = self.stop
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        with _HELD_LOCK:
            if _HELD.get(self.run_id) is self.stop:
                del _HELD[self.run_id]
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        every = self.lease.total_seconds() / 10
        renew_at = time.monotonic() + every
        while not self._done.wait(min(CANCEL_CHECK_SECONDS, max(0.0, renew_at - time.monotonic()))):
            if time.monotonic() >= renew_at:
                renew_at = time.monotonic() + every
                if not self._renew():
                    return
            elif self._cancel_asked():
                self.stop.request(RunStatus.CANCELLED, CANCELLED)

    def _renew(self) -> bool:
        """Renew the lease; False once the run is no longer ours (its stop requested)."""
        asked = time.monotonic()
        try:
            held = runs.renew_lease(self.engine, self.run_id, self.owner, utcnow() + self.lease)
        except Exception as exc:  # the store is locked or away: try again next beat
            log.warning("run %s: lease not renewed (%s)", self.run_id, describe_error(exc))
            return True
        if not held.held:
            self.stop.request(
                RunStatus.FAILED,
                "the run lost its lease (it was closed as lost while this process "
                "was stalled); it stopped without writing more",
            )
            return False
        self.stop.lease_deadline = asked + self.lease.total_seconds()
        if held.cancel_requested:
            self.stop.request(RunStatus.CANCELLED, CANCELLED)
        return True

    def _cancel_asked(self) -> bool:
        """Whether the store holds a cancel request for the run; a failed read is left
        to the next renewal, which logs the store's trouble."""
        try:
            return runs.cancel_asked(self.engine, self.run_id, self.owner)
        except Exception as exc:
            log.debug("run %s: cancel request not read (%s)", self.run_id, describe_error(exc))
            return False
