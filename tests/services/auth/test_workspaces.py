"""Workspaces: tenants with their own model, warehouse, connections and pipelines."""

from __future__ import annotations

import pytest
from tests.services.conftest import connect

from headwater.kernel.errors import Conflict, InvalidInput
from headwater.sandbox.testing import start_sandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.auth import users, workspaces
from headwater.services.pipelines import manage, runner

MAPPING = {"kind": "mapping", "mapping": {"email": "email"}}


def test_a_workspace_has_a_unique_name_and_its_creator_as_member(app: App) -> None:
    ada = users.add_user(app, "ada@example.com", "correct horse battery")
    acme = workspaces.add_workspace(app, "  Acme ", member_id=ada.id)
    assert acme.name == "Acme"
    assert acme.id.startswith("ws_")
    assert [w.id for w in workspaces.workspaces_of(app, ada.id)] == [app.workspace_id, acme.id]
    with pytest.raises(Conflict, match="already exists"):
        workspaces.add_workspace(app, "Acme")
    for bad in ("", "  ", "x" * 201):
        with pytest.raises(InvalidInput) as caught:
            workspaces.add_workspace(app, bad)
        assert caught.value.location == "name"
    names = [w.name for w in workspaces.list_workspaces(app)]
    assert names == ["default", "Acme"]
    assert workspaces.document(acme)["created_at"].endswith("+00:00")


def test_a_new_workspace_gets_its_own_warehouse_file(app: App) -> None:
    acme = app.in_workspace(workspaces.add_workspace(app, "Acme").id)
    assert app.warehouse_url() == f"duckdb:///{app.settings.home / 'warehouse.duckdb'}"
    expected = app.settings.home / "warehouses" / f"{acme.workspace_id}.duckdb"
    assert acme.warehouse_url() == f"duckdb:///{expected}"


@pytest.mark.slow
def test_two_workspaces_imports_never_share_a_table(app: App) -> None:
    acme = app.in_workspace(workspaces.add_workspace(app, "Acme").id)
    with start_sandbox(customers=40, seed=2) as sb:
        ours = manage.create(app, connect(app, sb).id, "ours", MAPPING)
        theirs = manage.create(acme, connect(acme, sb).id, "theirs", MAPPING)
        assert runner.run_pipeline(app, ours.id).status == "succeeded"
        assert runner.run_pipeline(acme, theirs.id).status == "succeeded"
    assert [c.id for c in connections.list_connections(acme)] == [theirs.connection_id]
    for view, mine, other in ((app, ours, theirs), (acme, theirs, ours)):
        warehouse = view.warehouse()
        try:
            assert warehouse.count() == 40
            assert len(list(warehouse.identities(mine.id))) == 40
            assert list(warehouse.identities(other.id)) == []
        finally:
            warehouse.close()
    assert (app.settings.home / "warehouses" / f"{acme.workspace_id}.duckdb").exists()


def test_a_taken_name_tells_nothing_of_other_tenants_workspaces(app: App) -> None:
    """Names were unique across the installation: a user adding "Globex" learned from
    the 409 that another tenant had a workspace by that name."""
    ada = users.add_user(app, "ada@example.com", "correct horse battery")
    bob = users.add_user(app, "bob@example.com", "correct horse battery")
    adas = workspaces.add_workspace(app, "Globex", member_id=ada.id)
    bobs = workspaces.add_workspace(app, " globex ", member_id=bob.id)  # not Ada's: fine
    assert adas.id != bobs.id
    with pytest.raises(Conflict, match="you have a workspace named 'GLOBEX' already"):
        workspaces.add_workspace(app, "GLOBEX", member_id=ada.id)  # Ada's own: refused
    assert [w.name for w in workspaces.workspaces_of(app, ada.id)] == ["default", "Globex"]
    assert [w.name for w in workspaces.workspaces_of(app, bob.id)] == ["default", "globex"]
    with pytest.raises(Conflict, match="already exists"):  # the operator sees them all
        workspaces.add_workspace(app, "Globex")
