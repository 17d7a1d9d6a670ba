"""The Stripe HTTP client: pinned version, shared rate budget, bounded retries.

One `StripeHTTP` serves one connection; all its threads share the keep-alive
connection pool (`wire.PooledWire`) and the request budget, so the requests/second
budget holds for the connection as a whole.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from headwater.adapters.connectors.contract import PermissionMissing
from headwater.adapters.connectors.stripe.declaration import STRIPE, Action, StripeSettings
from headwater.adapters.connectors.stripe.errors import (
    ApiFailure,
    InvalidKey,
    RetriesExhausted,
    SourceUnreachable,
    StripeRequestFailed,
)
from headwater.adapters.connectors.stripe.flight import Cancelled, Gate, Outcome, Turns
from headwater.adapters.connectors.stripe.pagination import json_object
from headwater.adapters.connectors.stripe.ratelimit import RequestBudget
from headwater.adapters.connectors.stripe.retry import RetryPolicy
from headwater.adapters.connectors.stripe.wire import Answer, Params, PooledWire, Wire, WireError
from headwater.kernel.errors import redact

#: How a successful response's body is decoded: a dict, or None if it is not a JSON
#: object (the answer is then retried like a failure).
Decode = Callable[[bytes], dict[str, Any] | None]

__all__ = ["Cancelled", "Params", "Reply", "StripeHTTP"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """A successful response: the decoded body and the facts from its headers."""

    body: dict[str, Any]
    request_id: str | None
    server_time: int | None  # unix seconds from the `Date` header
    raw: bytes = b""  # the body as Stripe sent it (`body` is its decoding)


def connect(settings: StripeSettings) -> PooledWire:
    """The wire to `settings`' Stripe, its requests signed with its key and pinned to
    the API version: keep-alive connections for as many workers, and two more."""
    headers = {
        "Authorization": f"Bearer {settings.api_key}",
        "Stripe-Version": STRIPE.api_version,
        "User-Agent": "headwater-stripe-connector",
    }
    return PooledWire(
        settings.base_url, headers, settings.timeout, settings.workers + 2, settings.proxy
    )


class StripeHTTP:
    """A thread-safe GET client for the Stripe API."""

    def __init__(
        self,
        settings: StripeSettings,
        *,
        limiter: RequestBudget | None = None,
        sleep: Callable[[float], None] | None = None,
        wire: Wire | None = None,
        gate: Gate | None = None,
        interruptible: bool = False,
    ) -> None:
        self.settings = settings
        #: Whether `interrupt` also frees a thread whose request is on the wire: each
        #: request is then sent from a thread of its own (`_carry`), which the caller
        #: waits for, or for `interrupt`.
        self.interruptible = interruptible
        self._answered = threading.Condition()  # a carried request ended, or `interrupt`
        #: When set, every request takes a slot in flight before its token (`flight`).
        self.gate = gate
        self.policy = RetryPolicy(settings.max_retries, settings.backoff_base, settings.backoff_cap)
        self._owns_limiter = limiter is None
        self.limiter = limiter or RequestBudget(
            settings.requests_per_second, shared=settings.budget_file
        )
        #: The order in which waiting requests take their send times (`flight.Turns`).
        self._turns = Turns()
        self._sleep = sleep  # None: wait on `_interrupted`, so that `interrupt` ends it
        self._interrupted = threading.Event()
        self._lock = threading.Lock()
        self._calls = 0
        self._retries = 0
        self._under_way = 0  # requests on the wire (`_wire`)
        self._closed = False
        self._pool = wire or connect(settings)

    @property
    def api_calls(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._calls

    def add_calls(self, calls: int, retries: int) -> None:
        """Count requests made for this connection elsewhere (a reading child process)."""
        with self._lock:
            self._calls += calls
            self._retries += retries

    @property
    def retries(self) -> int:
        return self._retries

    def interrupt(self) -> None:
        """From any thread: no request starts after this, and a wait between attempts
        ends at once, as does the wait for an answer if `interruptible` (else that
        request gets its answer or its timeout first); each raises `Cancelled` in the
        thread making the request."""
        self._interrupted.set()
        with self._answered:
            self._answered.notify_all()

    def close(self) -> None:
        """Close the connections; with requests still under way on other threads, the
        last of them closes them when it ends (closed under a request, the connection
        it opens after stays open until garbage-collected).  No request starts after."""
        if self._owns_limiter:
            self.limiter.close()  # its budget file, if shared (opened again if needed)
        with self._lock:
            self._closed = True
            if self._under_way:
                return
        self._pool.close()

    def _wire(self, path: str, params: Params) -> Answer:
        """The request itself, counted as it goes on the wire (from a thread of its own
        if `interruptible`); none after `close` or `interrupt`."""
        with self._lock:
            if self._closed or self._interrupted.is_set():
                raise Cancelled  # the source was closed or interrupted: no answer is taken
            self._under_way += 1
            self._calls += 1
        if self.interruptible:
            return self._carry(path, params)
        return self._on_wire(path, params)

    def _carry(self, path: str, params: Params) -> Answer:
        """`_on_wire` on a thread of its own; wait for its end or for `interrupt` (the
        request then goes on, and its answer is dropped when it comes)."""
        outcome: list[Answer | BaseException] = []

        def carry() -> None:
            try:
                outcome.append(self._on_wire(path, params))
            except BaseException as exc:  # raised in the waiting thread
                outcome.append(exc)
            with self._answered:
                self._answered.notify_all()

        threading.Thread(target=carry, name="stripe-request", daemon=True).start()
        with self._answered:
            self._answered.wait_for(lambda: outcome or self._interrupted.is_set())
        if not outcome:
            raise Cancelled
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    def _on_wire(self, path: str, params: Params) -> Answer:
        """The request counted in `_under_way`; the client is closed after it if `close`
        came meanwhile."""
        try:
            return self._pool.get(path, params)
        finally:
            with self._lock:
                self._under_way -= 1
                last = self._closed and not self._under_way
            if last:
                self._pool.close()

    def get(
        self,
        path: str,
        params: Params,
        stop: threading.Event | None = None,
        priority: float = 0.0,
        decode: Decode = json_object,
    ) -> Reply:
        """GET `path`; retry transient failures; raise a typed error otherwise.  Of the
        requests waiting for a send time, those of higher `priority` go first.  The
        reply's body is `decode` of the response's."""
        attempts = self.settings.max_retries + 1
        last: ApiFailure | None = None
        last_network: str | None = None
        unreached = 0  # failures to reach Stripe at all
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                with self._lock:
                    self._retries += 1
            try:
                response = self._send(path, params, stop, priority)
            except WireError as exc:
                last, last_network = None, str(exc)
                unreached += 1
                budget = self.settings.network_retries
                if budget is not None and unreached > budget:
                    url = self.settings.base_url
                    raise _exhausted(url, path, attempt, None, last_network) from exc
                delay = self.policy.delay(attempt, {})
                self._retry_later(path, last_network, (attempt, attempts), delay, stop)
                continue
            headers = response.headers
            action = self.policy.action(response.status_code, headers)
            if action is Action.OK:
                body = decode(response.content)
                if body is not None:
                    return Reply(
                        body,
                        headers.get("request-id"),
                        _server_time(headers),
                        response.content,
                    )
                last = ApiFailure(
                    response.status_code,
                    message="the response body is not a JSON object",
                    request_id=headers.get("request-id"),
                )
                action = Action.RETRY
            else:
                last = _failure(response)
            last_network = None
            if action is not Action.RETRY:
                raise _terminal(action, path, last)
            delay = self.policy.delay(attempt, headers)
            self._retry_later(path, last.describe(), (attempt, attempts), delay, stop)
        raise _exhausted(self.settings.base_url, path, attempts, last, last_network)

    def _send(
        self, path: str, params: Params, stop: threading.Event | None, priority: float
    ) -> Answer:
        """One request: a slot in flight (if gated), its turn and a send time, then the
        wire."""
        gate = self.gate
        if gate is not None:
            gate.acquire(stop, priority)
        try:
            if stop is not None and stop.is_set():
                raise Cancelled
            with self._turns.turn(priority, stop):
                self.limiter.acquire()
        except BaseException:
            if gate is not None:
                gate.release()
            raise
        if gate is None:
            return self._wire(path, params)
        flight = gate.sent()
        outcome = Outcome.FAILED  # no answer (a network error): no signal, a freed slot
        try:
            response = self._wire(path, params)
            if response.status_code == 429:
                outcome = refusal(response)
            elif response.status_code < 500:
                outcome = Outcome.ANSWERED
            return response
        finally:
            gate.done(flight, outcome)

    def _retry_later(
        self,
        path: str,
        reason: str,
        tries: tuple[int, int],
        delay: float,
        stop: threading.Event | None,
    ) -> None:
        """Wait `delay` before the next attempt (none after the last), saying why."""
        attempt, attempts = tries
        if attempt < attempts:
            log.info(
                "Stripe GET %s: %s; retry %d of %d in %.1f s",
                path,
                redact(reason),
                attempt,
                attempts - 1,
                delay,
            )
        self._wait(delay, stop, attempt < attempts)

    def _wait(self, delay: float, stop: threading.Event | None, more: bool) -> None:
        if not more:
            return
        if stop is not None:
            if stop.wait(delay):
                raise Cancelled
        elif self._sleep is not None:
            self._sleep(delay)
        elif self._interrupted.wait(delay):
            raise Cancelled


def refusal(response: Answer) -> Outcome:
    """What a 429 says to the concurrency controller: Stripe names the limiter that
    refused in ``Stripe-Rate-Limited-Reason`` (``global-concurrency``,
    ``endpoint-concurrency``, ``global-rate``, ...); a refusal not named is a rate's."""
    reason = response.headers.get("stripe-rate-limited-reason", "").strip().lower()
    return Outcome.CONCURRENCY_LIMITED if reason.endswith("-concurrency") else Outcome.RATE_LIMITED


def _server_time(headers: Mapping[str, str]) -> int | None:
    value = headers.get("date")
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError):
        return None


def _failure(response: Answer) -> ApiFailure:
    request_id = response.headers.get("request-id")
    body = json_object(response.content)
    error = body.get("error") if body else None
    if not isinstance(error, dict):
        snippet = response.text[:200].strip() or None
        return ApiFailure(response.status_code, message=snippet, request_id=request_id)

    def field(key: str) -> str | None:
        value = error.get(key)
        return str(value) if value is not None else None

    return ApiFailure(
        response.status_code, field("type"), field("code"), field("message"), request_id
    )


def _terminal(action: Action, path: str, failure: ApiFailure) -> Exception:
    detail = failure.describe()
    if action is Action.INVALID_KEY:
        return InvalidKey(
            f"Stripe rejected the API key as invalid or revoked ({detail}). "
            "Check that the key is copied in full and has not been rolled.",
            failure,
        )
    mentions_permission = "permission" in (failure.message or "").lower()
    if action is Action.PERMISSION or (
        failure.type == "invalid_request_error" and mentions_permission
    ):
        permission = STRIPE.permission_for(path)
        return PermissionMissing(
            f"The Stripe key lacks the '{permission}' permission needed for GET {path} "
            f"({detail}). Grant it to the restricted key in the Stripe Dashboard.",
            permission=permission,
        )
    return StripeRequestFailed(f"Stripe refused GET {path}: {detail}", failure)


def _exhausted(
    base_url: str, path: str, attempts: int, last: ApiFailure | None, network: str | None
) -> RetriesExhausted:
    if network is not None:
        return SourceUnreachable(
            f"Could not reach Stripe at {base_url} for GET {path}: gave up after "
            f"{attempts} attempts; last error: {network}",
            attempts,
            None,
        )
    detail = last.describe() if last else "unknown error"
    return RetriesExhausted(
        f"Stripe GET {path} kept failing: gave up after {attempts} attempts; last error: {detail}",
        attempts,
        last,
    )
