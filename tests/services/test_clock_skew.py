"""Profile values by Stripe's clock, not this machine's: a full read is dated by the
server's time of its first answer, as changes are by their events' times.

Found reading the code (4 December 2026): a full read was stamped with the local
clock.  With this machine's clock an hour ahead of Stripe's, a customer read in full
here, then changed in Stripe and read by another pipeline's incremental run, kept the
full read's (older) value as the profile's latest: its local stamp was an hour "later"
than the change's event.
"""

from __future__ import annotations

import time

import pytest
import stripe
from tests.services.failure_world import MAPPING, make

from headwater.kernel.settings import Settings
from headwater.sandbox.testing import start_sandbox
from headwater.services import profiles
from headwater.services.app import App
from headwater.services.pipelines import manage, runner

pytestmark = pytest.mark.slow

SKEW = 3600  # Stripe's clock behind this machine's


def test_a_change_after_a_full_read_wins_though_this_machine_s_clock_runs_ahead(
    settings: Settings,
) -> None:
    with start_sandbox(customers=20, seed=9, clock_start=time.time() - SKEW) as sb:
        client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
        ada = client.v1.customers.create({"email": "ada@example.com", "name": "Ada Before"})
        app = App.open(settings)
        try:
            first = make(app, sb)
            second = manage.create(
                app, first.connection_id, "second", {"kind": "mapping", "mapping": MAPPING}
            )
            for pipeline in (first, second):
                ended = runner.run_pipeline(app, pipeline.id)
                assert ended.status == "succeeded", ended.message
            time.sleep(1.1)  # the change is a second later than both reads, by any clock
            client.v1.customers.update(ada.id, {"name": "Ada After"})
            changed = runner.run_pipeline(app, first.id)  # the second one has not seen it
            assert changed.summary.get("kind") == "incremental", changed.summary
            assert changed.counters["written"] == 1
            (found,) = profiles.list_profiles(app, search="ada@example.com")
        finally:
            app.close()
    assert found["identity_count"] == 2
    assert found["values"]["first_name"] == "Ada After"
