"""Coalesced follow-up runs: deliveries ask, a dispatcher enqueues.

A verified delivery never starts a run itself: it records a request per enabled
incremental pipeline of its connection (`request_runs`; one row per pipeline however
many deliveries come, due after a short quiet spell, never later than `MOST_WAIT`
after the first).  `dispatch_due` turns due requests into queued runs with `runner.enqueue`, whose
one-live-run guarantee does the coalescing.  Which run covers a request is decided in
the store, without comparing clocks: the transaction that claims a run marks the
pipeline's request as covered by it (`covered_by`; it reads Stripe's events after that
commits, and each request was recorded after Stripe made its event), and a new request
clears the mark.  Then, per due request:

- a live run (queued, or running): look again once it has ended (the request is held,
  behind the requests that can run now, so held ones never starve the others);
- no live run, and the run that covers it succeeded: it read every change asked about
  that Stripe listed when it read: done (see below for the settling).  One that failed
  or was cancelled read maybe nothing: the request stays and runs (a lost follow-up
  would leave an acknowledged change unread until the next one);
- no live run, and none covers it, but one ended shortly before the request (within
  `STRAGGLE`): Stripe sends deliveries concurrently and retries them, so they straggle
  behind the changes they report, and that run may have read them already.  One look at
  Stripe decides: when its newest customer event is the position the pipeline saved,
  there is nothing to read and the request is dropped; otherwise (or when Stripe cannot
  be asked) it runs.  This is what keeps a burst of changes to one run and at most one
  follow-up;
- otherwise enqueue a run (a conflict means someone else just did; look again later).

A request those runs read is dropped only when the pipeline's saved position is
settled: Stripe's event list is eventually consistent, so a read saves its position
only before the events of its last `changes.SETTLE` seconds (`changes.unsettled`).  When
it stayed behind some, the request waits until `SETTLE_WAIT` after it was made and runs
once more: that run reads them again, with any event Stripe listed late among them, and
settles them (a burst of changes costs one more run; without it, an event listed late
after the last run of a quiet spell would wait for the next change or schedule).  A
delivery may also come before Stripe lists its event, so a run (or a look at Stripe)
that saw nothing new proves it only from `SETTLE_WAIT` after the request: until then
the request waits, then Stripe's newest listed event decides (one look; a run when it
is newer than what the pipeline read).  So a request whose run is enqueued stays, as
a *settling* check (`settling`), judged the same way once that run ended; one whose
run failed or was cancelled then goes (the runner's retries are for failures: a
settling check never runs one again), except a run closed as lost: its process died,
so no runner retries it.  The worker housekeeping that closes it enqueues its retry
(`retries.retry_lost`), which holds the check while it is live and covers it once
claimed; a run closed as lost otherwise (by the next run created for the pipeline, or
with no retry from the housekeeping) gets its retry from the check instead (as many as
the runner would: `run_retries`; one of the two wins, the other meets a live run).

A pipeline disabled, deleted or no longer incremental drops its requests.

A serving process starting asks for a run of every pipeline a delivery would
(`catch_up`): deliveries made while none listened failed, and Stripe retries them
only later, so without it the changes made meanwhile would wait minutes or hours.

Concurrency boundary: `Dispatcher` is one thread per serving process that calls
`dispatch_due` every `interval` seconds (and prunes old event ids now and then); every
other function here runs on the caller's thread.  Several processes may dispatch at
once: each step is a single-row compare-and-set, so they only race to the same end.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from headwater.adapters.connectors.stripe.changes import SETTLE, unsettled
from headwater.adapters.store import objects
from headwater.adapters.store import runs as run_store
from headwater.adapters.store import webhooks as store
from headwater.adapters.store.database import store_error
from headwater.kernel.clock import Clock, SystemClock
from headwater.kernel.entities import Connection, Pipeline, Run, RunStatus
from headwater.kernel.errors import Conflict, HeadwaterError, NotFound
from headwater.services.app import App
from headwater.services.connections import get_connection, open_source
from headwater.services.pipelines import manage, runner
from headwater.services.runs import retries

log = logging.getLogger(__name__)

#: A request is due after this quiet spell without another one: a burst of deliveries
#: (Stripe sends one per change, concurrently) lands in one run, while a lone change
#: waits only this long.
QUIET_SECONDS = 0.3
#: ... but never later than this after the first request, so a steady stream of
#: changes still runs.  Long enough for a burst of a few hundred changes (deliveries
#: spread over a few seconds) to need one run and one follow-up, not one per second.
MOST_WAIT = 4.0
#: Stripe retries a delivery for up to three days; an id older than that cannot return.
EVENT_ID_RETENTION = timedelta(days=3, hours=1)
#: A request made this soon after a run of its pipeline ended may be for changes that
#: run read: Stripe is asked whether anything is new before another run is enqueued.
STRAGGLE = timedelta(seconds=60)


def wanted_pipelines(app: App, connection_id: str) -> list[Pipeline]:
    """The pipelines a change of the connection asks to run: enabled and incremental."""
    found = manage.list_pipelines(app, connection_id)
    return [p for p in found if p.enabled and p.incremental]


def request_runs(
    app: App, connection_id: str, event_id: str, now: datetime, *, changes: bool = True
) -> list[str] | None:
    """Record the connection's event `event_id` and, when it `changes` customers, ask
    for a run of each wanted pipeline; their ids, or None for an event id seen before
    (then nothing is recorded or asked)."""
    wanted = wanted_pipelines(app, connection_id) if changes else []
    asks = [(p.id, p.workspace_id) for p in wanted]
    timing = (QUIET_SECONDS, MOST_WAIT)
    if not store.record_delivery(app.engine, connection_id, event_id, now, asks, timing):
        return None
    return [p.id for p in wanted]


def catch_up(app: App, now: datetime, connection_id: str | None = None) -> list[str]:
    """Ask for a run of each wanted pipeline of every connection with a webhook
    endpoint (or of `connection_id` only), as a delivery would; the pipelines' ids.

    A serving process calls it when it starts: deliveries Stripe made while no process
    listened failed, and Stripe retries them only later (minutes at first, hours in the
    end), so changes made meanwhile would wait for those retries.  Storing an endpoint
    calls it for its connection: changes made while it had none were never delivered.
    The request is judged as any other: nothing new costs a look at Stripe, not a run."""
    asks: list[tuple[str, str]] = []
    for found, workspace_id in store.endpoint_connections(app.engine):
        if connection_id is not None and found != connection_id:
            continue
        try:
            wanted = wanted_pipelines(app.in_workspace(workspace_id), found)
        except NotFound:  # deleted meanwhile
            continue
        asks.extend((p.id, p.workspace_id) for p in wanted)
    store.ask_runs(app.engine, asks, now, (QUIET_SECONDS, MOST_WAIT))
    return [pipeline_id for pipeline_id, _ in asks]


def dispatch_due(app: App, now: datetime) -> list[Run]:
    """One pass over due requests; returns the runs it enqueued.  A request that
    cannot be judged now (the store or Stripe failing) is logged and looked at again
    on the next pass; the others go on."""
    enqueued: list[Run] = []
    for followup in store.due_followups(app.engine, now):
        try:
            run = _dispatch(app, followup, now)
        except HeadwaterError as exc:
            log.warning("webhook follow-up of %s: %s", followup.pipeline_id, exc.message)
            continue
        if run is not None:
            enqueued.append(run)
    return enqueued


#: How long a request waits for the live run of its pipeline before it is looked at
#: again.
HOLD = timedelta(seconds=1)


def _dispatch(app: App, followup: store.FollowUp, now: datetime) -> Run | None:
    found = objects.find(
        app.engine, Pipeline, id=followup.pipeline_id, workspace_id=followup.workspace_id
    )
    if not found or not found[0].enabled or not found[0].incremental:
        store.drop_followup(app.engine, followup)  # deleted, disabled, or full only
        return None
    if run_store.live_run(app.engine, followup.pipeline_id) is not None:
        store.hold_followup(app.engine, followup, now + HOLD)
        return None
    covered = followup.covered_by is not None and _succeeded(app, followup.covered_by)
    retry = None
    if followup.settling and not covered:
        retry = _retry_of_lost(app, followup.covered_by)
        if retry is None:  # failed, cancelled: retries are the runner's
            store.drop_followup(app.engine, followup)
            return None
    view = app.in_workspace(followup.workspace_id)
    settle = covered or (not followup.settling and _read_already(view, found[0], followup))
    if settle:
        # Until SETTLE_WAIT after the request, Stripe may not list an event it announces
        # yet: a run (or a glance) that saw nothing new proves nothing before then.
        if now < followup.requested_at + SETTLE_WAIT:
            store.hold_followup(app.engine, followup, followup.requested_at + SETTLE_WAIT)
            return None
        settled = not unsettled(found[0].state.position)
        if settled and (not covered or _listed_all(view, found[0])):
            store.drop_followup(app.engine, followup)
            return None
    try:
        run = runner.enqueue(view, followup.pipeline_id, retry=retry)
    except Conflict:  # a run became live meanwhile: judge it on the next pass
        return None
    if settle:
        store.drop_followup(app.engine, followup)
    else:  # see whether that run settles what it reads
        store.settle_followup(app.engine, followup, followup.requested_at + SETTLE_WAIT)
    return run


#: How long after a request the events its run read but left unsettled (created within
#: `changes.SETTLE` seconds of the read: Stripe may still list an earlier event late)
#: are read again by one more run, which settles them.
SETTLE_WAIT = timedelta(seconds=SETTLE + 1)


def _retry_of_lost(app: App, run_id: str | None) -> run_store.Retry | None:
    """A retry of run `run_id` if it was closed as lost (its worker died, so no runner
    retries it), by the runner's rule (`retries.lost_retry`); else None."""
    why = "whose worker was lost before it read the changes a webhook announced"
    found = retries.lost_retry(app, run_id, why) if run_id else None
    return None if found is None else found[1]


def _succeeded(app: App, run_id: str) -> bool:
    try:
        return run_store.get_run(app.engine, run_id, 0).status == RunStatus.SUCCEEDED
    except NotFound:  # its pipeline's runs were deleted: nothing says it read anything
        return False


def _read_already(app: App, pipeline: Pipeline, followup: store.FollowUp) -> bool:
    """Whether the run that ended just before the request read everything Stripe has
    (see the module docstring); False whenever that is not known for sure."""
    position = pipeline.state.position
    if position is None or pipeline.needs_full:
        return False
    last = run_store.list_runs(app.engine, [pipeline.id], 1)
    ended = objects.aware(last[0].finished_at) if last else None
    if ended is None or ended < followup.first_at - STRAGGLE:
        return False
    connection = get_connection(app, pipeline.connection_id)
    return connection.events_read and _listed_all(app, pipeline, connection)


def _listed_all(app: App, pipeline: Pipeline, connection: Connection | None = None) -> bool:
    """Whether the newest customer event Stripe lists is the newest the pipeline's saved
    position read (asked once, briefly; False when Stripe cannot say).  A position that
    cannot be compared (none, a full run due, no Events: Read) is taken as read."""
    position = pipeline.state.position
    if position is None or pipeline.needs_full:
        return True
    connection = connection or get_connection(app, pipeline.connection_id)
    if not connection.events_read:
        return True
    try:
        with open_source(app, connection, glance=True) as source:
            newest = source.event_position().get("event_id")
    except HeadwaterError as exc:
        log.warning("webhook follow-up of %s runs: %s", pipeline.id, exc.message)
        return False
    return newest is not None and newest == position.get("newest", position.get("event_id"))


class Dispatcher:
    """The thread that enqueues due follow-ups (see the module docstring)."""

    def __init__(self, app: App, clock: Clock | None = None, interval: float = 0.1) -> None:
        self._app = app
        self._clock = clock or SystemClock()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="webhook-dispatcher", daemon=True)
        self._pruned_at: datetime | None = None
        self._failing = False  # the last beat failed (`_failed`)

    def start(self) -> None:
        """Ask for the runs that catch up with changes made while no process listened
        (`catch_up`), then dispatch every `interval` seconds."""
        try:
            asked = catch_up(self._app, self._clock.now())
        except Exception:  # the store was unreachable: deliveries will ask instead
            log.exception("webhook catch-up at start failed")
        else:
            if asked:
                log.info("webhook catch-up: a run of %d pipeline(s) asked for", len(asked))
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            now = self._clock.now()
            try:
                dispatch_due(self._app, now)
                if self._pruned_at is None or now - self._pruned_at > timedelta(minutes=10):
                    store.prune_events(self._app.engine, now - EVENT_ID_RETENTION)
                    self._pruned_at = now
            except Exception as exc:  # try again next beat
                self._failed(exc)
            else:
                if self._failing:
                    log.info("webhook follow-ups go on: the metadata store answers again")
                    self._failing = False

    def _failed(self, exc: Exception) -> None:
        """Log a failed beat: a store outage (or an error of ours) once when it begins,
        not at every beat of it (ten a second); a surprise with its traceback, once."""
        known = exc if isinstance(exc, HeadwaterError) else store_error(exc)
        if self._failing:
            return
        self._failing = True
        if known is not None:
            log.warning("webhook follow-ups wait: %s", known.message)
        else:
            log.exception("webhook follow-ups failed; retrying")
