"""A connection's request budget is the connection's, whatever reads it: two runs of
its pipelines at once (and their reading processes, and the checks the service makes)
take their requests from one budget, not each the full rate."""

from __future__ import annotations

import pytest
from tests.services.conftest import connect

from headwater.kernel.errors import InvalidInput
from headwater.sandbox.testing import RunningSandbox
from headwater.services.app import App
from headwater.services.connections import get_connection, open_source, update_connection


def test_two_sources_of_one_connection_share_its_budget(app: App, sandbox: RunningSandbox) -> None:
    conn = get_connection(app, connect(app, sandbox, rps=10.0).id)
    other = get_connection(app, connect(app, sandbox, rps=10.0).id)
    with (
        open_source(app, conn) as first,
        open_source(app, conn, glance=True) as second,
        open_source(app, other) as elsewhere,
    ):
        waits = [first.http.limiter.reserve() for _ in range(10)]
        assert max(waits) < 0.6  # ten in the first second, half a spacing apart
        # The eleventh of the connection's requests, from another source, waits for
        # the second after the first request: the budget is one.
        assert second.http.limiter.reserve() >= 0.9
        # Another connection's budget is its own.
        assert elsewhere.http.limiter.reserve() < 0.1


def test_a_budget_too_small_to_space_requests_is_refused(app: App, sandbox: RunningSandbox) -> None:
    """A budget of 5e-324 requests/s spaced two requests by an infinite time: the run,
    or the sample a new pipeline is tried on, failed on an OverflowError (a 500)."""
    conn = connect(app, sandbox)
    for rate in (5e-324, 0.05):
        with pytest.raises(InvalidInput) as caught:
            update_connection(app, conn.id, requests_per_second=rate)
        assert caught.value.location == "requests_per_second"
    assert update_connection(app, conn.id, requests_per_second=0.1).requests_per_second == 0.1
