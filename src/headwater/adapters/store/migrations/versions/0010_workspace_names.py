"""Workspace names are no longer unique across the installation (only among a user's
workspaces, checked by `accounts.add_workspace`): a refused name told a user that
another tenant had a workspace by that name.

Revision ID: 0010_workspace_names
Revises: 0009_list_indexes
"""

from __future__ import annotations

from alembic import op

revision = "0010_workspace_names"
down_revision = "0009_list_indexes"

# The constraint was created unnamed (0001): PostgreSQL named it `workspaces_name_key`;
# SQLite's batch mode finds it under the name this convention gives it.
CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.drop_constraint("workspaces_name_key", "workspaces", type_="unique")
        return
    with op.batch_alter_table("workspaces", naming_convention=CONVENTION) as batch:
        batch.drop_constraint("uq_workspaces_name", type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.create_unique_constraint("workspaces_name_key", ["name"])
