"""A full rebuild's ids, values and writes, set-based (step 5 of `identity_rebuild`).

Input: the work table ``hw_ik`` (identities numbered in no order, with their keys,
former profile ids and components ``comp``).  The id rules of
``services/identity/ids.py``, as windowed queries:

- ``hw_ov``: identities per (component, former profile): the overlaps;
- each former profile's heir: its largest overlap, ties to the component whose smallest
  identity (by key: ``hw_cm.mn``) comes first; each component's id: among the formers it
  is heir of, the largest by former ``_identity_count``, ties to the smallest id; a
  component heir of none gets a new id (`new_id`, the same formula as ``ids.new_profile_id``);
- merges and splits: components with two formers, formers in two components.

Values: per column, the non-null value of the identity with the latest
``_source_updated_at``, ties by pipeline order then identity key
(``array_agg(... ORDER BY ...) FILTER (WHERE ... IS NOT NULL))[1]``, the same text on
both engines); a component of one identity takes its row as is.  Only profiles whose
count or values changed are rewritten (with the rebuild's time), so a rebuild that
changes nothing writes nothing; into an empty ``profiles`` (a first import) the values go
straight in, without ``hw_new``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from headwater.adapters.warehouse import identity_values, sql
from headwater.adapters.warehouse.ownership import Execute
from headwater.adapters.warehouse.profile_store import ChangeRecord
from headwater.adapters.warehouse.spelling import Spelling
from headwater.kernel.model import PropertyType

T = PropertyType
WORK = ("hw_ov", "hw_cm", "hw_id", "hw_chg", "hw_mv", *identity_values.WORK)


@dataclass(frozen=True)
class Counts:
    written: int
    removed: int
    moved: int
    merges: list[tuple[tuple[str, ...], str]]
    splits: list[tuple[str, tuple[str, ...]]]

    @property
    def logged(self) -> tuple[list[tuple[tuple[str, ...], str]], list[tuple[str, tuple[str, ...]]]]:
        return self.merges, self.splits

    def changes(self, run_id: str, at: datetime) -> list[ChangeRecord]:
        return [ChangeRecord("merge", b, (a,), run_id, at) for b, a in self.merges] + [
            ChangeRecord("split", (b,), a, run_id, at) for b, a in self.splits
        ]


def write(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    run_id: str,
    at: datetime,
    order: Sequence[str],
    reserve: identity_values.Reserve | None = None,
) -> Counts:
    """Ids, values, and the writes of profiles and memberships."""
    s = sql.quote(schema)
    # No profile yet (a first import): every component's values are written as they
    # are computed, not compared first.
    empty = not execute(f"SELECT 1 FROM {s}.profiles LIMIT 1", {})
    _ids(execute, schema, sp, run_id)
    merges, splits = _logged(execute, sp.text)
    identity_values.drop(execute, "hw_ov", "hw_cm")  # each work table as soon as done with it
    if empty:
        unique = _drop_unique(execute, s, sp, "profiles")  # built once, after (below)
        identity_values.values(execute, schema, sp, columns, order, reserve, direct=at)
        _add_unique(execute, s, "profiles", unique)
        identity_values.drop(execute, "hw_m", "hw_mr")
        written, removed = _count(execute, "hw_id"), 0
    else:
        identity_values.values(execute, schema, sp, columns, order, reserve)
        identity_values.drop(execute, "hw_m", "hw_mr")
        written, removed = _write_profiles(execute, schema, sp, columns, at)
    identity_values.drop(execute, "hw_new", "hw_chg")
    moved = _memberships(execute, schema, sp)
    identity_values.drop(execute, "hw_mv")
    return Counts(written, removed, moved, merges, splits)


def _ids(execute: Execute, schema: str, sp: Spelling, run_id: str) -> None:
    s, c = sql.quote(schema), sp.collate
    execute(
        # A former id naming no profile (a write's provisional id) is no former profile.
        f"{sp.temp.format('hw_ov')} SELECT w.comp, w.former, count(*) AS k FROM hw_ik AS w "
        f"JOIN {s}.profiles AS p ON p._profile_id = w.former GROUP BY w.comp, w.former",
        {},
    )
    # ``mn``: the component's identity of smallest key (of a component of one, that
    # one: only the others are ordered).
    first = sp.first_member.format("w.n", f"w.p{c}", f"w.s{c}")
    execute(
        f"{sp.temp.format('hw_cm')} WITH g AS (SELECT comp, min(n) AS mn, count(*) AS size "
        "FROM hw_ik GROUP BY comp) SELECT comp, mn, size FROM g WHERE size = 1 UNION ALL "
        f"SELECT w.comp, {first} AS mn, count(*) AS size FROM hw_ik AS w "
        "WHERE w.comp IN (SELECT comp FROM g WHERE size > 1) GROUP BY w.comp",
        {},
    )
    identity_values.analyse(execute, sp, "hw_ov", "hw_cm")
    heir = (
        "SELECT former, comp FROM (SELECT o.former, o.comp, row_number() OVER "
        f"(PARTITION BY o.former ORDER BY o.k DESC, f.p{c}, f.s{c}) AS r FROM hw_ov AS o "
        "JOIN hw_cm AS m ON m.comp = o.comp JOIN hw_ik AS f ON f.n = m.mn) AS x WHERE r = 1"
    )
    size = (
        "SELECT o.former, coalesce(max(p._identity_count), sum(o.k)) AS size FROM hw_ov AS o "
        f"LEFT JOIN {s}.profiles AS p ON p._profile_id = o.former "
        "GROUP BY o.former"
    )
    wins = (
        "SELECT comp, former FROM (SELECT h.comp, h.former, row_number() OVER (PARTITION BY "
        "h.comp ORDER BY f.size DESC, h.former) AS r FROM heir AS h JOIN size AS f "
        "ON f.former = h.former) AS y WHERE r = 1"
    )
    digest = sql.profile_md5(sp.ph("run"), "w.p", "w.s")
    made = sql.uuid_value("x.h", sp.profile_key, sp.uuid_bits)
    execute(
        f"{sp.temp.format('hw_id')} WITH heir AS ({heir}), size AS ({size}), wins AS ({wins}) "
        f"SELECT x.comp, x.mn, x.size, coalesce(x.former, {made}) AS id FROM "
        f"(SELECT m.comp, m.mn, m.size, v.former, CASE WHEN v.former IS NULL THEN {digest} "
        "END AS h FROM hw_cm AS m JOIN hw_ik AS w ON w.n = m.mn LEFT JOIN wins AS v "
        # OFFSET 0: PostgreSQL would otherwise inline the MD5 into each of its 7 uses.
        "ON v.comp = m.comp OFFSET 0) AS x",
        {"run": run_id},
    )
    identity_values.analyse(execute, sp, "hw_id")


def _logged(
    execute: Execute, t: str
) -> tuple[list[tuple[tuple[str, ...], str]], list[tuple[str, tuple[str, ...]]]]:
    """The merges (components holding two formers) and splits (formers in two); `t`:
    the text type (ids are kept as the engine's UUIDs, and logged as text)."""
    merged: dict[str, list[str]] = {}
    for after, before in execute(
        f"SELECT CAST(i.id AS {t}), CAST(o.former AS {t}) FROM hw_ov AS o JOIN hw_id AS i "
        "ON i.comp = o.comp WHERE o.comp "
        "IN (SELECT comp FROM hw_ov GROUP BY comp HAVING count(*) > 1)",
        {},
    ):
        merged.setdefault(after, []).append(before)
    split: dict[str, list[str]] = {}
    for before, after in execute(
        f"SELECT CAST(o.former AS {t}), CAST(i.id AS {t}) FROM hw_ov AS o JOIN hw_id AS i "
        "ON i.comp = o.comp WHERE "
        "o.former IN (SELECT former FROM hw_ov GROUP BY former HAVING count(*) > 1)",
        {},
    ):
        split.setdefault(before, []).append(after)
    merges = [(tuple(sorted(b)), a) for a, b in merged.items()]
    splits = [(b, tuple(sorted(a))) for b, a in sorted(split.items())]
    return merges, splits


def _write_profiles(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    at: datetime,
) -> tuple[int, int]:
    """Remove the profiles no component kept, rewrite the changed ones; the counts."""
    s = sql.quote(schema)
    pid = "p._profile_id"  # the ids of hw_new are of its type
    differs = "".join(f" OR p.{sql.quote(n)} IS DISTINCT FROM nw.{sql.quote(n)}" for n in columns)
    execute(
        f"{sp.temp.format('hw_chg')} SELECT nw.id FROM hw_new AS nw LEFT JOIN {s}.profiles AS p "
        f"ON {pid} = nw.id WHERE p._profile_id IS NULL OR p._identity_count <> nw.size{differs}",
        {},
    )
    identity_values.analyse(execute, sp, "hw_chg")
    gone = f"NOT EXISTS (SELECT 1 FROM hw_new AS nw WHERE nw.id = {pid})"
    removed = int(execute(f"SELECT count(*) FROM {s}.profiles AS p WHERE {gone}", {})[0][0])
    if removed:
        execute(f"DELETE FROM {s}.profiles AS p WHERE {gone}", {})
    written = int(execute("SELECT count(*) FROM hw_chg", {})[0][0])
    if written:
        execute(
            f"DELETE FROM {s}.profiles AS p WHERE EXISTS (SELECT 1 FROM hw_chg AS x "
            f"WHERE x.id = {pid})",
            {},
        )
        cols = "".join(f", {sql.quote(n)}" for n in columns)
        picked = "".join(f", nw.{sql.quote(n)}" for n in columns)
        # Past a fifth of the profiles, the primary key is built again rather than
        # grown (PostgreSQL: 730,000 new profiles took 2.6-4.5 s to insert with it,
        # 0.6 s + 0.6 s to add it again without); the ids written are distinct.
        many = written * 5 > _count(execute, "hw_new")
        unique = _drop_unique(execute, s, sp, "profiles") if many else []
        execute(
            f"INSERT INTO {s}.profiles (_profile_id, _updated_at, _identity_count{cols}) "
            f"SELECT CAST(nw.id AS {sp.profile_key}), CAST({sp.ph('at')} AS {sp.timestamptz}), "
            f"nw.size{picked} FROM hw_new AS nw JOIN hw_chg AS x ON x.id = nw.id",
            {"at": at},
        )
        _add_unique(execute, s, "profiles", unique)
    return written, removed


def _memberships(execute: Execute, schema: str, sp: Spelling) -> int:
    """Set every identity's ``_profile_id`` that changed; returns how many."""
    s = sql.quote(schema)
    execute(
        f"{sp.temp.format('hw_mv')} SELECT w.n, w.p, w.s, d.id FROM hw_ik AS w "
        "JOIN hw_id AS d ON d.comp = w.comp "
        "WHERE w.former IS NULL OR w.former <> d.id",
        {},
    )
    identity_values.analyse(execute, sp, "hw_mv")
    moved = int(execute("SELECT count(*) FROM hw_mv", {})[0][0])
    if not moved:
        return moved
    # Every updated row is a new row version inserted into each index of `identities`;
    # into `_profile_id`'s, at random places (the ids are hashes).  Past a fifth of the
    # rows, building the indexes again (one sort each) is cheaper (PostgreSQL: the
    # update of a million identities took 15-19 s with the plain indexes, still 10.5 s
    # with the unique key's alone, 3.6 s + 1.9 s to add it again without).  Their drop
    # locks `identities` until this transaction commits; the key is added back with
    # its name and definition (it is never violated: no key column changes).
    many = moved * 5 > _count(execute, "hw_ik")
    rebuilt = sp.member_indexes if many else ()
    for name, _ in rebuilt:
        execute(f"DROP INDEX IF EXISTS {s}.{sql.quote(name)}", {})
    unique = _drop_unique(execute, s, sp, "identities") if many else []
    found = f"i.{sp.row_id} = m.n" if sp.row_id else "i._pipeline_id = m.p AND i._source_id = m.s"
    execute(
        f"UPDATE {s}.identities AS i SET _profile_id = CAST(m.id AS {sp.profile_key}) "
        f"FROM hw_mv AS m WHERE {found}",
        {},
    )
    _add_unique(execute, s, "identities", unique)
    for name, column in rebuilt:
        execute(f"CREATE INDEX {sql.quote(name)} ON {s}.identities ({sql.quote(column)})", {})
    return moved


def _drop_unique(execute: Execute, s: str, sp: Spelling, table: str) -> list[tuple[str, str]]:
    """Drop the unique constraints of `table` (where the engine can add them again:
    `Spelling.unique_constraints`); their (name, definition), for `_add_unique`.  The
    drop locks the table until the transaction ends, and a failed add rolls it back."""
    if sp.unique_constraints is None:
        return []
    found = execute(sp.unique_constraints, {"table": f"{s}.{table}"})
    dropped = [(str(r[0]), str(r[1])) for r in found]
    for name, _ in dropped:
        execute(f"ALTER TABLE {s}.{table} DROP CONSTRAINT {sql.quote(name)}", {})
    return dropped


def _add_unique(execute: Execute, s: str, table: str, dropped: list[tuple[str, str]]) -> None:
    for name, definition in dropped:
        execute(f"ALTER TABLE {s}.{table} ADD CONSTRAINT {sql.quote(name)} {definition}", {})


def _count(execute: Execute, table: str) -> int:
    return int(execute(f"SELECT count(*) FROM {table}", {})[0][0])
