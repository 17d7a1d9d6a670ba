"""Pipeline ownership and saved state, kept in the warehouse (DESIGN.md §6 rules 5 and 6).

Table ``pipeline_state``: one row per pipeline with the run that owns it (the fencing
token), the saved `PipelineState` as JSON, and when both last changed.  The statements
are the same on every SQL engine; each adapter passes how it spells a named parameter
and how it runs a statement inside its open transaction.

Why a row in the warehouse and not only the metadata store: a run that the store gave
up on (its lease lapsed while it was paused or cut off) may still hold a warehouse
connection.  Checking the owner inside the very transaction that writes rows, purges or
saves a position is what keeps such a run from committing anything afterwards.  The
check is an UPDATE of the owner row, not a SELECT: on PostgreSQL it locks the row until
commit, so a takeover waits for a write in flight and the next write of the old owner
sees the new owner; on DuckDB concurrent updates of one row conflict instead of both
committing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from headwater.adapters.warehouse import sql
from headwater.kernel.errors import Conflict
from headwater.kernel.state import PipelineState

TABLE = "pipeline_state"
#: The workspace whose customers the warehouse holds (one row; `bind_workspace`).
WORKSPACE = "workspace"
#: ``_run_id`` of the identities a resumed run's earlier attempt wrote (`claim`).
EARLIER_ATTEMPT = "{0}~earlier"

#: Runs one statement with named parameters in the open transaction; returns its rows.
Execute = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]
#: How an engine spells the named parameter ``name`` (``$name``, ``%(name)s``).
Placeholder = Callable[[str], str]


class OwnershipLost(Conflict):
    """Another run owns the pipeline now; this run may not write, purge or save state."""


@dataclass(frozen=True)
class OwnedState:
    """A pipeline's row in ``pipeline_state``: its owner and its saved state."""

    owner_run_id: str
    state: PipelineState | None  # None until a run saved one in this warehouse
    updated_at: datetime


def claim(
    execute: Execute, schema: str, ph: Placeholder, pipeline_id: str, run_id: str
) -> PipelineState | None:
    """Make `run_id` the owner of the pipeline (taking it over from any earlier run) and
    return the state saved in this warehouse (None: nothing saved here).

    A run the service put back in the queue resumes under its id, and owned the
    pipeline last: the identities its earlier attempt wrote are labelled as that
    attempt's (``_run_id`` `EARLIER_ATTEMPT`), so that this attempt's purge of the rows
    it did not write weighs them like any older row (with its own id, a customer
    deleted in Stripe between the attempts outlived the purge)."""
    now = datetime.now(UTC)
    s = sql.quote(schema)
    owner = execute(
        f"SELECT owner_run_id FROM {s}.{TABLE} WHERE pipeline_id = {ph('p')}", {"p": pipeline_id}
    )
    if owner and owner[0][0] == run_id:
        execute(
            f"UPDATE {s}.identities SET _run_id = {ph('e')} "
            f"WHERE _pipeline_id = {ph('p')} AND _run_id = {ph('r')}",
            {"p": pipeline_id, "r": run_id, "e": EARLIER_ATTEMPT.format(run_id)},
        )
    rows = execute(
        f"INSERT INTO {s}.{TABLE} (pipeline_id, owner_run_id, state, claimed_at, updated_at) "
        f"VALUES ({ph('p')}, {ph('r')}, NULL, {ph('n')}, {ph('n')}) "
        "ON CONFLICT (pipeline_id) DO UPDATE SET owner_run_id = excluded.owner_run_id, "
        "claimed_at = excluded.claimed_at RETURNING state",
        {"p": pipeline_id, "r": run_id, "n": now},
    )
    text = rows[0][0] if rows else None
    return PipelineState.from_json(text) if text else None


def fence(
    execute: Execute,
    schema: str,
    ph: Placeholder,
    pipeline_id: str,
    run_id: str,
    state: PipelineState | None = None,
) -> None:
    """Check, inside the caller's transaction, that `run_id` still owns the pipeline, and
    save `state` in the same statement.  Raises `OwnershipLost` otherwise; the caller's
    transaction then rolls back, so nothing of it commits.  One statement on one row."""
    params: dict[str, Any] = {"p": pipeline_id, "r": run_id, "n": datetime.now(UTC)}
    sets = f"updated_at = {ph('n')}"
    if state is not None:
        sets += f", state = {ph('s')}"
        params["s"] = state.to_json()
    owned = execute(
        f"UPDATE {sql.quote(schema)}.{TABLE} SET {sets} "
        f"WHERE pipeline_id = {ph('p')} AND owner_run_id = {ph('r')} RETURNING owner_run_id",
        params,
    )
    if owned:
        return
    current = read(execute, schema, ph, pipeline_id)
    if current is None:
        raise OwnershipLost(
            f"pipeline {pipeline_id} has no owner in this warehouse (its state was removed, "
            f"e.g. the schema was dropped); run {run_id} stopped without writing"
        )
    raise OwnershipLost(
        f"another run ({current.owner_run_id}) took over pipeline {pipeline_id}; "
        "this run stopped without writing"
    )


def read(execute: Execute, schema: str, ph: Placeholder, pipeline_id: str) -> OwnedState | None:
    rows = execute(
        f"SELECT owner_run_id, state, updated_at FROM {sql.quote(schema)}.{TABLE} "
        f"WHERE pipeline_id = {ph('p')}",
        {"p": pipeline_id},
    )
    if not rows:
        return None
    owner, text, updated = rows[0]
    return OwnedState(str(owner), PipelineState.from_json(text) if text else None, updated)


def forget(execute: Execute, schema: str, ph: Placeholder, pipeline_id: str) -> None:
    """Remove the pipeline's row (the pipeline is being deleted)."""
    execute(
        f"DELETE FROM {sql.quote(schema)}.{TABLE} WHERE pipeline_id = {ph('p')}",
        {"p": pipeline_id},
    )


def bind_workspace(
    execute: Execute, schema: str, ph: Placeholder, workspace_id: str, take: bool
) -> str | None:
    """Record that the warehouse holds `workspace_id`'s customers, unless it holds
    another's: then return that one (and change nothing) or, with `take`, record this
    one instead.  The warehouse itself says whose it is, whatever URL reaches it (a host
    alias, another user): two workspaces never share a table."""
    rows = execute(f"SELECT workspace_id FROM {sql.quote(schema)}.{WORKSPACE}", {})
    owners = {str(r[0]) for r in rows}
    if owners == {workspace_id}:
        return None
    if owners and not take:
        return sorted(owners)[0]
    execute(f"DELETE FROM {sql.quote(schema)}.{WORKSPACE}", {})
    execute(
        f"INSERT INTO {sql.quote(schema)}.{WORKSPACE} (workspace_id) VALUES ({ph('w')})",
        {"w": workspace_id},
    )
    return None
