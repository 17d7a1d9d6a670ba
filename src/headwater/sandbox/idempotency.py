"""Idempotency keys, kept as Stripe keeps them.

A ``POST`` with an ``Idempotency-Key`` header saves its answer under that key (per mode:
test and live keys never share one).  The same key again, on the same endpoint with the
same parameters, gets the saved answer back, marked ``Idempotent-Replayed: true`` with
the first request's id in ``Original-Request``; on another endpoint or with other
parameters it is a 400 ``idempotency_error``.  Only answers whose work began are saved:
a request refused before it ran (bad parameters, a missing object, an injected fault)
saves nothing, so fixing it and retrying with the same key works.  Keys are forgotten
24 hours after their first use, by the sandbox clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from headwater.sandbox.errors import ApiError
from headwater.sandbox.routes import Request, Response
from headwater.sandbox.store import Clock

KEPT_SECONDS = 24 * 3600


@dataclass(frozen=True)
class _Saved:
    at: int
    endpoint: str
    params: dict[str, Any]
    response: Response
    request_id: str


def _misuse(message: str, token: str) -> ApiError:
    hint = f" Try using a key other than '{token}' if you meant to execute a different request."
    return ApiError(400, message + hint, type_="idempotency_error")


class IdempotencyKeys:
    """The saved answers, oldest first (the clock only moves forward)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._saved: dict[tuple[bool, str], _Saved] = {}

    def answer(
        self, live: bool, token: str, request: Request, run: Callable[[], Response]
    ) -> Response:
        """`run`'s answer, or the one saved under `token` (ApiError on a misuse)."""
        now = self._clock.now()
        self._forget(now - KEPT_SECONDS)
        endpoint = f"{request.method} {request.path}"
        params = request.params()
        saved = self._saved.get((live, token))
        if saved is None:
            response = run()
            self._saved[live, token] = _Saved(now, endpoint, params, response, request.request_id)
            return _with_headers(response, {"idempotency-key": token})
        if saved.endpoint != endpoint:
            raise _misuse(
                "Keys for idempotent requests can only be used for the same endpoint they "
                f"were first used for ('{saved.endpoint}' vs '{endpoint}').",
                token,
            )
        if saved.params != params:
            raise _misuse(
                "Keys for idempotent requests can only be used with the same parameters "
                "they were first used with.",
                token,
            )
        replayed = {
            "idempotency-key": token,
            "idempotent-replayed": "true",
            "original-request": saved.request_id,
        }
        return _with_headers(saved.response, replayed)

    def _forget(self, before: int) -> None:
        while self._saved:
            oldest = next(iter(self._saved))
            if self._saved[oldest].at > before:
                return
            del self._saved[oldest]


def _with_headers(response: Response, headers: dict[str, str]) -> Response:
    return Response(
        response.status, response.body, {**response.headers, **headers}, response.objects
    )
