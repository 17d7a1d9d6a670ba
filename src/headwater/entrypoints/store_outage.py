"""The metadata store failing under an HTTP request, as the service tells it.

A request of `headwater serve` (the API's, a console page's, `/readyz`'s) reads the store
through SQLAlchemy, whose driver raises its own errors when the store is away (its
server stopped, its sessions ended, connections refused) or a SQLite file stays locked.
Each application turns them, in one handler, into `StoreUnavailable`, a transient error
(HTTP 503, retry), with `store_unavailable`.

The message a client gets names the metadata store and says to retry, never the
driver's words: they name the store's host, port, database and user, and the request
could not be authenticated (the credentials live in the store), so the caller may be
anyone. The driver's words go to the service's log, every URL password masked.
"""

from __future__ import annotations

import logging

from headwater.adapters.store.database import StoreUnavailable, store_error
from headwater.adapters.warehouse.staging import hide_password

log = logging.getLogger(__name__)

#: What a client is told (the API's error message, the console's page).
STORE_FAILED = (
    "the metadata store failed: it cannot be reached, or did not answer in time; retry in a moment"
)


def store_unavailable(exc: BaseException, request: str) -> StoreUnavailable | None:
    """`exc` as the `StoreUnavailable` a client is told when it is the store's driver
    failing for want of the store (logged with its cause, masked, and `request`: its
    method and path); None for any other error (a bug's: a 500)."""
    failure = store_error(exc)
    if failure is None:
        return None
    log.warning("%s failed: %s", request, hide_password(failure.message))
    return StoreUnavailable(STORE_FAILED)
