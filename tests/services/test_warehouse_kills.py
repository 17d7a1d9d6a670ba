"""A PostgreSQL warehouse whose session dies under a run (issue: resilience).

The run's own backend is terminated (`pg_terminate_backend`) at chosen points, by
triggers in the warehouse: during a write statement, during the COMMIT of a batch (a
deferred constraint trigger fires there), and during identity resolution.  A sequence
counts the trigger's firings (sequences ignore rollbacks), so the kill lands once.
Whatever the point, the run ends with a clear error (or, for resolution, imported and
saying its profiles wait), and the next run leaves exactly what a fresh full import of
the same sandbox leaves: the same identities and profiles, nothing twice, nothing lost.
The same holds when the server goes away for a second under a run (a relay that drops
every connection and refuses new ones, `relay.py`) in the middle of a write that follows
one that committed (the write waits in a trigger while the relay is cut).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import stripe
from tests.conftest import PG_URL, fresh_schema
from tests.services.conftest import use_postgres
from tests.services.failure_world import Landed, fresh_import, landed, make, seed_shared
from tests.services.relay import Relay

from headwater.adapters.store import runs
from headwater.kernel.settings import Settings
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import profiles
from headwater.services.app import App
from headwater.services.pipelines import engine, runner
from headwater.services.pipelines.documents import run_warnings
from headwater.services.warehouse import set_url as use_postgres_at

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

KILL_FUNCTION = """
CREATE FUNCTION {s}.hw_die() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF nextval('{s}.hw_die_seq') = TG_ARGV[0]::bigint THEN
    PERFORM pg_terminate_backend(pg_backend_pid());
    PERFORM pg_sleep(5);  -- the termination lands here
  END IF;
  RETURN NULL;
END $$
"""
#: Where to die: (trigger DDL, what the run reports).
POINTS = {
    "write": "CREATE TRIGGER hw_die AFTER INSERT OR UPDATE OR DELETE ON {s}.identities "
    "FOR EACH STATEMENT EXECUTE FUNCTION {s}.hw_die({n})",
    "commit": "CREATE CONSTRAINT TRIGGER hw_die AFTER INSERT OR UPDATE ON {s}.identities "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {s}.hw_die({n})",
    "resolve": "CREATE TRIGGER hw_die AFTER INSERT OR UPDATE OR DELETE ON {s}.profiles "
    "FOR EACH STATEMENT EXECUTE FUNCTION {s}.hw_die({n})",
}


def arm(schema: str, point: str, nth: int) -> None:
    """Terminate the session that fires the `nth` trigger at `point` (once)."""
    s = f'"{schema}"'
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP TRIGGER IF EXISTS hw_die ON {s}.identities")
        conn.execute(f"DROP TRIGGER IF EXISTS hw_die ON {s}.profiles")
        conn.execute(f"DROP SEQUENCE IF EXISTS {s}.hw_die_seq")
        conn.execute(f"CREATE SEQUENCE {s}.hw_die_seq")
        conn.execute(KILL_FUNCTION.replace("{s}", s).replace("CREATE", "CREATE OR REPLACE", 1))
        conn.execute(POINTS[point].format(s=s, n=nth))


def fired(schema: str) -> int:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        row = conn.execute(f'SELECT last_value, is_called FROM "{schema}".hw_die_seq').fetchone()
    assert row is not None
    return int(row[0]) if row[1] else 0


def disarm(schema: str) -> None:
    arm(schema, "write", 10**12)  # never reached


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # 1,509 customers in batches of 300: six write transactions per full run.
    monkeypatch.setattr(engine, "WRITE_BATCH", 300)


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[App, RunningSandbox, str]]:
    with fresh_schema("w") as schema, start_sandbox(customers=1500, seed=21) as sb:
        seed_shared(sb)
        app = App.open(settings)
        try:
            use_postgres(app, schema)
            yield app, sb, schema
        finally:
            app.close()


def _reference(settings: Settings, tmp_path: Path, sb: RunningSandbox) -> Landed:
    with fresh_schema("ref") as schema:
        return fresh_import(settings, tmp_path / "ref", f"{PG_URL}?schema={schema}", sb)


@pytest.mark.parametrize(("point", "nth"), [("write", 4), ("commit", 700), ("resolve", 1)])
def test_the_first_import_s_session_killed_then_the_next_run_lands_exactly(
    world: tuple[App, RunningSandbox, str],
    small_batches: None,
    settings: Settings,
    tmp_path: Path,
    point: str,
    nth: int,
) -> None:
    app, sb, schema = world
    pipeline = make(app, sb, incremental=True)
    # The tables exist before the trigger can be armed: a first claim creates them.
    app.warehouse().close()
    wh = app.warehouse()
    wh.ensure_columns(app.model().columns)
    wh.close()
    arm(schema, point, nth)
    killed = runner.run_pipeline(app, pipeline.id)
    assert fired(schema) >= nth, "the kill never fired"
    if point == "resolve":
        # Every write committed: the run imported everything; its profiles wait.
        assert killed.status == "succeeded", killed.message
        assert "terminating connection" in killed.summary["profiles"]["error"]
        assert any(w.startswith("profiles were not updated") for w in run_warnings(killed))
    else:
        assert killed.status == "failed"
        assert killed.message is not None
        assert killed.message.startswith("PostgreSQL write failed: terminating connection")
        assert killed.summary.get("transient") is True  # the service retries it
    disarm(schema)
    again = runner.run_pipeline(app, pipeline.id)
    assert again.status == "succeeded", again.message
    got = landed(app, pipeline.id)
    assert got.pending == 0
    want = _reference(settings, tmp_path, sb)
    assert got.identities == want.identities
    assert got.profiles == want.profiles


@pytest.mark.parametrize(("point", "nth"), [("write", 2), ("commit", 150), ("resolve", 1)])
def test_an_incremental_run_s_session_killed_then_the_next_run_lands_exactly(
    world: tuple[App, RunningSandbox, str],
    small_batches: None,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    point: str,
    nth: int,
) -> None:
    app, sb, schema = world
    pipeline = make(app, sb, incremental=True)
    first = runner.run_pipeline(app, pipeline.id)
    assert first.status == "succeeded", first.message
    client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
    listed = [c.id for c in client.v1.customers.list({"limit": 100}).auto_paging_iter()]
    monkeypatch.setattr(engine, "WRITE_BATCH", 100)  # changes come 100 to a page
    for n, cid in enumerate(listed[:240]):
        if n % 4 == 0:
            client.v1.customers.delete(cid)
        else:
            client.v1.customers.update(cid, {"email": f"moved{n % 7}@example.com"})
    for n in range(30):
        client.v1.customers.create({"email": f"new{n % 5}@example.com", "name": f"N{n}"})
    arm(schema, point, nth)
    killed = runner.run_pipeline(app, pipeline.id)
    assert killed.kind == "incremental"
    assert fired(schema) >= nth, "the kill never fired"
    assert killed.status == ("succeeded" if point == "resolve" else "failed"), killed.message
    disarm(schema)
    again = runner.run_pipeline(app, pipeline.id)
    assert again.status == "succeeded", again.message
    assert again.summary["kind"] == "incremental"  # from the position that committed
    got = landed(app, pipeline.id)
    assert got.pending == 0
    want = _reference(settings, tmp_path, sb)
    assert got.identities == want.identities
    # The same profiles; their values come from each identity's own change time, which
    # an incremental run knows and a full import does not: a rebuild must agree.
    assert set(got.profiles) == set(want.profiles)
    profiles.rebuild_profiles(app)
    assert landed(app, pipeline.id) == got
    # One more run reads again the events of the last seconds (`changes.SETTLE`) and
    # changes nothing: no duplicate, no resurrected customer.
    quiet = runner.run_pipeline(app, pipeline.id)
    assert quiet.status == "succeeded", quiet.message
    assert landed(app, pipeline.id) == got
    assert runs.list_runs(app.engine, [pipeline.id])[2].id == killed.id


STALL_FUNCTION = """
CREATE OR REPLACE FUNCTION {s}.hw_die() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF nextval('{s}.hw_die_seq') = TG_ARGV[0]::bigint THEN
    PERFORM pg_sleep(3);  -- the relay is cut here, mid-write
  END IF;
  RETURN NULL;
END $$
"""


def stall(schema: str, nth: int) -> None:
    """Make the `nth` write statement on identities wait (see `POINTS`' write)."""
    arm(schema, "write", nth)
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(STALL_FUNCTION.replace("{s}", f'"{schema}"'))


def _cut_mid_write(relay: Relay, schema: str, nth: int) -> None:
    """Cut the relay while the `nth` write statement waits, restore it a second later."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if fired(schema) >= nth:
            relay.cut()
            time.sleep(1.0)
            relay.restore()
            return
        time.sleep(0.01)


@pytest.mark.parametrize("incremental_kill", [False, True], ids=["first-import", "incremental"])
def test_a_warehouse_server_gone_for_a_moment_fails_the_run_and_the_next_lands_exactly(
    settings: Settings,
    small_batches: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    incremental_kill: bool,
) -> None:
    relay = Relay()
    app = App.open(settings)
    with fresh_schema("w") as schema, start_sandbox(customers=1500, seed=23) as sb:
        seed_shared(sb)
        use_postgres_at(app, f"postgresql://root@127.0.0.1:{relay.port}/test?schema={schema}")
        pipeline = make(app, sb, incremental=True)
        if incremental_kill:
            assert runner.run_pipeline(app, pipeline.id).status == "succeeded"
            client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
            listed = [c.id for c in client.v1.customers.list({"limit": 100}).auto_paging_iter()]
            for n, cid in enumerate(listed[:240]):
                client.v1.customers.update(cid, {"email": f"moved{n % 7}@example.com"})
            monkeypatch.setattr(engine, "WRITE_BATCH", 100)

        stall(schema, 3)  # a write after at least one committed
        watching = threading.Thread(target=_cut_mid_write, args=(relay, schema, 3))
        watching.start()
        cut = runner.run_pipeline(app, pipeline.id)
        watching.join()
        assert relay.cuts == 1
        assert cut.status == "failed"
        assert cut.message is not None
        assert cut.message.startswith(
            ("PostgreSQL write failed: ", "cannot connect to PostgreSQL")
        ), cut.message
        assert cut.summary.get("transient") is True  # the service retries it
        again = runner.run_pipeline(app, pipeline.id)
        assert again.status == "succeeded", again.message
        assert again.summary["kind"] == ("incremental" if incremental_kill else "full")
        got = landed(app, pipeline.id)
        assert got.pending == 0
        want = _reference(settings, tmp_path, sb)
    app.close()
    relay.close()
    assert got.identities == want.identities
    assert set(got.profiles) == set(want.profiles)
