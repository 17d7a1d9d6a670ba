"""Text holding the NUL character, which the PostgreSQL metadata store cannot keep:
every service refuses it before it writes anything (`InvalidInput` naming the field),
and an id holding it names nothing (`NotFound`, as any unknown id), on both stores.
The API refuses it at its edge; the CLI and the console reach these services directly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from tests.services.conftest import connect

from headwater.adapters.store.auth_tables import sign_in_attempts
from headwater.kernel.errors import InvalidInput, NotFound
from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services import connections, profiles
from headwater.services.app import App
from headwater.services.auth import invitations, sessions, tokens, users, workspaces
from headwater.services.pipelines import history, manage, runner
from headwater.services.webhooks import endpoints

N = "\x00"


@pytest.fixture
def sandbox() -> Any:
    with start_sandbox(customers=5, seed=3) as running:
        yield running


def _refused(call: Callable[[], object], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        call()
    assert raised.value.location == field, raised.value
    assert "NUL" in raised.value.message


def _snapshot(app: App) -> tuple[object, ...]:
    with app.engine.connect() as conn:
        attempts = conn.execute(sa.select(sa.func.count()).select_from(sign_in_attempts))
        attempt_count = attempts.scalar_one()
    return (
        [vars(c) for c in connections.list_connections(app)],
        [(p.id, p.name, p.description) for p in manage.list_pipelines(app)],
        [t.id for t in tokens.list_tokens(app)[0]],
        attempt_count,
    )


def test_text_holding_nul_is_refused_naming_the_field_before_anything_is_written(
    app: App, sandbox: RunningSandbox
) -> None:
    conn = connect(app, sandbox)
    pipeline = manage.create(app, conn.id, "p")
    users.add_user(app, "ada@example.com", "long enough")
    before = _snapshot(app)
    key, url = sandbox.secret_key, sandbox.url
    _refused(lambda: connections.add_stripe(app, "a" + N, key, url), "name")
    _refused(lambda: connections.update_connection(app, conn.id, name="b" + N), "name")
    _refused(lambda: connections.add_stripe(app, "a", key, url + "/" + N), "base_url")
    _refused(lambda: connections.moves_base_url(app, conn.id, url + N), "base_url")
    _refused(lambda: manage.create(app, conn.id, "q", description="d" + N), "description")
    changes = manage.PipelineChanges(description="d" + N)
    _refused(lambda: manage.update(app, pipeline.id, changes), "description")
    _refused(lambda: users.add_user(app, "a" + N + "@x.io", "long enough"), "email")
    _refused(lambda: invitations.invite(app, "ada@example.com" + N), "email")
    _refused(lambda: users.set_password(app, "ada" + N + "@example.com", "long enough"), "email")
    _refused(lambda: users.authenticate(app, "ada" + N + "@example.com", "x"), "email")
    _refused(lambda: sessions.sign_in(app, "a" + N + "@x.io", "x", address="10.0.0.1"), "email")
    _refused(lambda: sessions.sign_in(app, "a@x.io", "x", address="10.0" + N), "address")
    _refused(
        lambda: endpoints.set_secret(app, conn.id, "whsec_" + "a" * 20, "https://x" + N), "url"
    )
    _refused(lambda: endpoints.register(app, conn.id, "https://hw.example.com/" + N), "url")
    _refused(lambda: manage.page_pipelines(app, starting_after="pl_" + N), "starting_after")
    _refused(lambda: tokens.list_tokens(app, starting_after="tok_" + N), "starting_after")
    _refused(lambda: profiles.list_profiles(app, search="a" + N), "search")
    _refused(lambda: profiles.count_profiles(app, search="a" + N), "search")
    with pytest.raises(InvalidInput) as raised:  # an unknown cursor, as before
        history.page_runs(app, starting_after="run_" + N)
    assert raised.value.location == "starting_after"
    assert _snapshot(app) == before


def test_an_id_holding_nul_is_not_found(app: App) -> None:
    for call in (
        lambda: connections.get_connection(app, "conn_" + N),
        lambda: manage.get(app, "pl_" + N),
        lambda: manage.list_pipelines(app, "conn_" + N),
        lambda: manage.page_pipelines(app, "conn_" + N),
        lambda: runner.get_run(app, "run_" + N),
        lambda: runner.cancel_run(app, "run_" + N),
        lambda: runner.enqueue(app, "pl_" + N),
        lambda: history.page_errors(app, "run_" + N),
        lambda: tokens.get_token(app, "tok_" + N),
        lambda: tokens.revoke_token(app, "tok_" + N),
        lambda: workspaces.get_workspace(app, "ws_" + N),
        lambda: app.in_workspace("ws_" + N),
        lambda: endpoints.show(app, "conn_" + N),
        lambda: profiles.show_profile(app, "p" + N),
    ):
        with pytest.raises(NotFound) as raised:
            call()
        assert "\\x00" in raised.value.message  # the id as given, escaped
