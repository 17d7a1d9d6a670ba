"""How DuckDB lands a staged batch and deletes identities, each recording what it
touched in ``pending_identities`` (`pending`), inside the caller's transaction.

Profiles are not touched here: identity resolution (`services/identity`) reads the
pending rows after the write.
"""

from __future__ import annotations

from typing import Any

import duckdb

from headwater.adapters.warehouse import pending, sql
from headwater.adapters.warehouse.duckdb_stage import TYPES, run
from headwater.adapters.warehouse.sql_warehouse import Landing

PLACEHOLDERS = ("$p", "$c", "$r", "$n")


def merge(conn: duckdb.DuckDBPyConnection, schema: str, landing: Landing) -> int:
    """Upsert the staged rows on the unique key; how many identities were new."""
    insert, update_tail = sql.identity_upsert(
        schema,
        landing.stage,
        landing.names,
        PLACEHOLDERS,
        landing.casts,
        TYPES.profile_key,
        TYPES.uuid_bits,
    )
    # DuckDB cannot say whether an upsert inserted or updated.  Every write to this
    # database goes through one connection (DuckDB locks the file to one process)
    # and the transaction sees only its own changes, so the growth of the table is
    # the number of new identities; count(*) of a table is cheap in DuckDB.
    count = f"SELECT count(*) FROM {sql.quote(schema)}.identities"
    before = int(run(conn, count)[0][0])
    run(conn, insert + update_tail, landing.params)
    inserted = int(run(conn, count)[0][0]) - before
    record = pending.from_rows(schema, landing.stage, pending.new_batch(), "$p")
    run(conn, record, {"p": landing.params["p"]})
    return inserted


def delete_where(
    conn: duckdb.DuckDBPyConnection, schema: str, where: str, params: dict[str, Any]
) -> int:
    """Delete matching identities, first recording them (and their profile ids) as
    pending: their profiles are resolution's to fix."""
    run(conn, pending.from_identities(schema, where, pending.new_batch()), params)
    gone = run(conn, f"DELETE FROM {sql.quote(schema)}.identities WHERE {where}", params)
    return int(gone[0][0]) if gone else 0


def upgrade(conn: duckdb.DuckDBPyConnection, schema: str) -> None:
    """Upgrade files made by earlier versions (in the caller's transaction).

    Before identity resolution every identity got a profile id at write time (``NOT
    NULL``); now a new identity has none, or a provisional one, until it is resolved
    (`sql.identity_upsert`).  ``profiles`` had a primary key, which DuckDB cannot drop:
    the table is copied into one without it (`TypeMapper.profile_primary_key`).
    """
    s = sql.quote(schema)
    keyed = run(
        conn,
        "SELECT count(*) FROM duckdb_constraints() WHERE schema_name = $1 "
        "AND table_name = 'profiles' AND constraint_type = 'PRIMARY KEY'",
        [schema],
    )
    if keyed[0][0]:
        run(conn, f"CREATE TABLE {s}.hw_profiles_copy AS SELECT * FROM {s}.profiles")
        run(conn, f"DROP TABLE {s}.profiles")
        run(conn, f"ALTER TABLE {s}.hw_profiles_copy RENAME TO profiles")
        for column in ("_profile_id", "_updated_at", "_identity_count"):
            run(conn, f"ALTER TABLE {s}.profiles ALTER {column} SET NOT NULL")
    found = run(
        conn,
        "SELECT is_nullable FROM information_schema.columns WHERE table_schema = $1 "
        "AND table_name = 'identities' AND column_name = '_profile_id'",
        [schema],
    )
    if found and found[0][0] == "NO":
        run(conn, f"ALTER TABLE {s}.identities ALTER _profile_id DROP NOT NULL")
