"""The metadata store failing under an HTTP request, as the service tells it.

A request of `headwater serve` (the API's, a console page's, `/readyz`'s) reads the store
through SQLAlchemy, whose driver raises its own errors when the store is away (its
server stopped, its sessions ended, connections refused) or a SQLite file stays locked.
Each application turns them, in one place, into `StoreUnavailable`, a transient error
(HTTP 503, retry), with `store_unavailable`: the API and the console in an exception
handler, `serve`'s own routes in `AnswerStoreOutage`.

Every such 503 (and any other transient error's, the API's and the console's) says when
to retry, ``Retry-After: RETRY_AFTER_SECONDS`` (`retry_later`), as a 429 does.

The message a client gets names the metadata store and says to retry, never the
driver's words: they name the store's host, port, database and user, and the request
could not be authenticated (the credentials live in the store), so the caller may be
anyone. The driver's words go to the service's log, every URL password masked.
"""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Scope

from headwater.adapters.store.database import StoreUnavailable, store_error
from headwater.adapters.warehouse.staging import hide_password
from headwater.entrypoints.asgi_failures import AnswerFailures

log = logging.getLogger(__name__)

#: What a client is told (the API's error message, the console's page).
STORE_FAILED = (
    "the metadata store failed: it cannot be reached, or did not answer in time; retry in a moment"
)


#: The ``Retry-After`` of every 503 (a transient error), in seconds. What a 503 waits
#: for (a store server restarting or failing over, a SQLite lock let go, Stripe or a
#: warehouse answering again) comes back in seconds, not minutes: 5 keeps a client
#: that heeds it from asking many times a second meanwhile, each request trying the
#: store again, without leaving it waiting long once the outage is over.
RETRY_AFTER_SECONDS = 5


def retry_later() -> dict[str, str]:
    """The headers of a 503: when to retry (`RETRY_AFTER_SECONDS`)."""
    return {"Retry-After": str(RETRY_AFTER_SECONDS)}


def store_unavailable(exc: BaseException, request: str) -> StoreUnavailable | None:
    """`exc` as the `StoreUnavailable` a client is told when it is the store's driver
    failing for want of the store (logged with its cause, masked, and `request`: its
    method and path); None for any other error (a bug's: a 500)."""
    failure = store_error(exc)
    if failure is None:
        return None
    log.warning("%s failed: %s", request, hide_password(failure.message))
    return StoreUnavailable(STORE_FAILED)


class AnswerStoreOutage(AnswerFailures):
    """ASGI middleware: a request whose handler the store failed (and that has sent
    nothing yet) gets 503 with the API's error document, ``unavailable``; any other
    exception goes on. For `serve`'s own routes (``/readyz``, ``/metrics``: the caller's
    credentials are checked in the store); the API and the console answer their own."""

    def failed(self, exc: Exception, scope: Scope, started: bool) -> ASGIApp | None:
        failure = None if started else store_unavailable(exc, _named(scope))
        if failure is None:
            raise exc
        error = {"type": "unavailable", "message": failure.message, "field": None}
        return JSONResponse({"error": error}, status_code=503, headers=retry_later())


def _named(scope: Scope) -> str:
    return f"{scope.get('method', '')} {scope.get('path', '')}"
