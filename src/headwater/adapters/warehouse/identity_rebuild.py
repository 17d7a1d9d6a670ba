"""The full rebuild of profiles, set-based in the warehouse (docs/identity.md §8).

Python never sees every identity: the engine computes the keys (`identity_keys`), the
link components, the ids, the values and the writes; Python sees only the link
components holding two or more first-identifier values, where the guard's order of
links decides (`Job.guard`, the service's own rule), and the few merges and splits to
log.  The steps, each one or a few statements over work tables of one transaction:

1. ``hw_ik``: every identity with a number ``n`` (unique, in no order: `Spelling.
   numbered`; numbering in key order was a sort of every key, a fifth of a rebuild),
   its former profile id, its keys, and its *node*: the smallest ``n`` of its
   first-identifier group (links of the first identifier never trip the guard and can
   be taken first), or its own ``n`` without a first identifier.  Where the rules fall
   back on identity-key order, the steps after order by the key itself.
2. ``hw_e``: edges between nodes for the other links, only where one can exist: a
   (connection, source id) held twice, and a value of identifier r >= 2 held by two
   identities eligible at rank r (no earlier identifier on both: their masks of
   earlier identifiers share no bit).  Members of a (value, mask) class are joined
   to the class's representative when some class of the value is eligible with it,
   and representatives of eligible classes to each other: the same connectivity as
   the pairwise links, in linear size.
3. ``hw_lab``: connected components of the nodes by minimum-label propagation with
   pointer jumping (a few rounds); each identity's component joins its row (``comp``).
4. Components with two or more first-identifier values are handed to the guard.
5. Ids, values and writes: `identity_profiles`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from headwater.adapters.warehouse import (
    identity_keys,
    identity_profiles,
    identity_values,
    pending,
    sql,
)
from headwater.adapters.warehouse.identity_keys import Key, KeySpec
from headwater.adapters.warehouse.identity_values import Reserve
from headwater.adapters.warehouse.ownership import Execute
from headwater.adapters.warehouse.profile_store import log_changes, unnest
from headwater.adapters.warehouse.spelling import Spelling
from headwater.kernel.model import PropertyType

WORK = ("hw_ik", "hw_e", "hw_adj", "hw_lab", "hw_step", "hw_next", "hw_w")


@dataclass(frozen=True)
class Member:
    """One identity of a component handed to the guard."""

    n: int
    pipeline_id: str
    source_id: str
    connection_id: str
    keys: tuple[Key | None, ...]


#: The members of one link component -> its profiles, as lists of ``n``.
Guard = Callable[[list[Member]], list[list[int]]]


@dataclass(frozen=True)
class Job:
    """One rebuild: the key rules, the run it is logged under, and the guard."""

    spec: KeySpec
    run_id: str
    at: datetime
    pipeline_order: tuple[str, ...]
    guard: Guard
    #: ``pending_identities`` batches read before, removed with the write.
    resolved: Collection[str] = ()


@dataclass(frozen=True)
class Outcome:
    """What a rebuild did (counts, and the logged merges and splits)."""

    considered: int = 0
    written: int = 0
    removed: int = 0
    moved: int = 0
    merges: list[tuple[tuple[str, ...], str]] = field(default_factory=list)
    splits: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


def rebuild(
    execute: Execute,
    schema: str,
    sp: Spelling,
    columns: Mapping[str, PropertyType],
    job: Job,
    reserve: Reserve | None = None,
) -> Outcome:
    """Recompute every profile (the caller holds the transaction and the lock);
    `reserve` is told the memory its widest step needs (`identity_values.values`)."""
    for statement in sp.rebuild_setup:
        execute(statement, {})
    considered = _work_table(execute, schema, sp, job.spec)
    _edges(execute, sp, job.spec)
    _components(execute, sp)
    _guarded(execute, sp, job)
    identity_values.drop(
        execute, "hw_e", "hw_adj", "hw_lab"
    )  # as soon as done: less to hold or spill
    counts = identity_profiles.write(
        execute, schema, sp, columns, job.run_id, job.at, job.pipeline_order, reserve
    )
    identity_keys.replace_table(execute, schema, sp, job.spec, "hw_ik")
    log_changes(execute, sql.quote(schema), sp, counts.changes(job.run_id, job.at))
    pending.clear(execute, schema, sp.ph, sp.text, job.resolved)
    identity_values.drop(execute, *WORK, *identity_profiles.WORK)
    return Outcome(considered, counts.written, counts.removed, counts.moved, *counts.logged)


def _work_table(execute: Execute, schema: str, sp: Spelling, spec: KeySpec) -> int:
    """Step 1 (``hw_ik``); returns the number of identities."""
    s = sql.quote(schema)
    params: dict[str, Any] = {}
    fixes = _python_keys(execute, schema, sp, spec)
    inner: list[str] = []
    keys: list[str] = []
    for j, rule in enumerate(spec.rules):
        items, expr = identity_keys.key_expr(
            rule, f"i.{sql.quote(rule.column)}", sp, params, f"r{j}"
        )
        inner.extend(items)
        keys.append(f"CASE WHEN u.fx IS NULL THEN {expr} ELSE u.fk{j} END" if fixes else expr)
    joined = ""
    if fixes:
        arrays = [f"{unnest(sp, 'fp', sp.text)} AS p", f"{unnest(sp, 'fs', sp.text)} AS s"]
        params.update(fp=[f[0] for f in fixes], fs=[f[1] for f in fixes])
        inner.append("f.p AS fx")
        for j, kind in enumerate(spec.column_types(sp)):
            params[f"fk{j}"] = [f[2][j] for f in fixes]
            arrays.append(f"{unnest(sp, f'fk{j}', kind)} AS k{j}")
            inner.append(f"f.k{j} AS fk{j}")
        joined = (
            f" LEFT JOIN (SELECT {', '.join(arrays)}) AS f "
            "ON f.p = i._pipeline_id AND f.s = i._source_id"
        )
    rows = (
        f"SELECT {sp.numbered} AS n, "
        "i._pipeline_id AS p, i._source_id AS s, i._connection_id AS c, "
        "i._source_updated_at AS at, i._profile_id AS former, "
        f"{', '.join(inner)} FROM {s}.identities AS i{joined}"
    )
    picked = "".join(f", {k} AS k{j + 1}" for j, k in enumerate(keys))
    execute(
        f"{sp.temp.format('hw_ik')} SELECT t.*, CASE WHEN t.k1 IS NULL THEN t.n "
        "ELSE min(t.n) OVER (PARTITION BY t.k1) END AS node FROM (SELECT u.n, u.p, u.s, "
        f"u.c, u.at, u.former{picked} FROM ({rows}) AS u) AS t",
        params,
    )
    identity_values.analyse(execute, sp, "hw_ik")
    found = execute("SELECT count(*) FROM hw_ik", {})
    return int(found[0][0])


def _python_keys(
    execute: Execute, schema: str, sp: Spelling, spec: KeySpec
) -> list[tuple[str, str, tuple[Key | None, ...]]]:
    """The keys of identities holding a non-ASCII identifier value, by Python's rule."""
    where = identity_keys.non_ascii(spec, sp, "i")
    if where is None:
        return []
    cols = "".join(f", i.{sql.quote(r.column)}" for r in spec.rules)
    rows = execute(
        f"SELECT i._pipeline_id, i._source_id{cols} FROM {sql.quote(schema)}.identities AS i "
        f"WHERE {where}",
        {},
    )
    return [
        (r[0], r[1], tuple(rule.normalise(v) for rule, v in zip(spec.rules, r[2:], strict=True)))
        for r in rows
    ]


def _mask(rank: int, alias: str) -> str:
    """Bits of the identifiers before `rank` (1-based) that the identity has."""
    bits = [
        f"CASE WHEN {alias}.k{j} IS NULL THEN 0 ELSE {1 << (j - 1)} END" for j in range(1, rank)
    ]
    return " + ".join(bits) if bits else "0"


def _edges(execute: Execute, sp: Spelling, spec: KeySpec) -> None:
    """Step 2 (``hw_e``)."""
    execute(
        f"{sp.temp.format('hw_e')} SELECT w.node AS a, g.rep AS b FROM hw_ik AS w JOIN "
        "(SELECT c, s, min(node) AS rep FROM hw_ik GROUP BY c, s HAVING count(*) > 1) AS g "
        "ON w.c = g.c AND w.s = g.s WHERE w.node <> g.rep",
        {},
    )
    for rank in range(2, len(spec.rules) + 1):
        k = f"k{rank}"
        classes = (
            f"SELECT w.{k} AS v, {_mask(rank, 'w')} AS m, count(*) AS z, min(w.node) AS rep "
            f"FROM hw_ik AS w WHERE w.{k} IN (SELECT {k} FROM hw_ik WHERE {k} IS NOT NULL "
            f"GROUP BY {k} HAVING count(*) > 1) GROUP BY w.{k}, {_mask(rank, 'w')}"
        )
        pairs = (
            "SELECT a.v, a.m, a.rep AS ra, b.rep AS rb FROM cls AS a JOIN cls AS b "
            "ON a.v = b.v AND (a.m & b.m) = 0 AND (a.m <> b.m OR a.z > 1)"
        )
        execute(
            f"INSERT INTO hw_e (a, b) WITH cls AS ({classes}), pairs AS ({pairs}) "
            "SELECT ra, rb FROM pairs WHERE ra <> rb UNION ALL "
            f"SELECT w.node, q.ra FROM hw_ik AS w JOIN (SELECT DISTINCT v, m, ra FROM pairs) "
            f"AS q ON w.{k} = q.v AND {_mask(rank, 'w')} = q.m WHERE w.node <> q.ra",
            {},
        )
    identity_values.analyse(execute, sp, "hw_e")


def _components(execute: Execute, sp: Spelling) -> None:
    """Step 3 (``hw_lab``, then ``hw_ik.comp``)."""
    execute(f"{sp.temp.format('hw_adj')} SELECT a, b FROM hw_e UNION ALL SELECT b, a FROM hw_e", {})
    execute(
        f"{sp.temp.format('hw_lab')} SELECT a AS node, least(a, min(b)) AS lab "
        "FROM hw_adj GROUP BY a",
        {},
    )
    identity_values.analyse(execute, sp, "hw_adj", "hw_lab")
    while True:
        execute(
            f"{sp.temp.format('hw_step')} SELECT o.node, least(o.lab, coalesce(m.lab, o.lab)) "
            "AS lab FROM hw_lab AS o LEFT JOIN (SELECT x.a, min(l.lab) AS lab FROM hw_adj AS x "
            "JOIN hw_lab AS l ON l.node = x.b GROUP BY x.a) AS m ON m.a = o.node",
            {},
        )
        execute(
            f"{sp.temp.format('hw_next')} SELECT t.node, coalesce(u.lab, t.lab) AS lab "
            "FROM hw_step AS t LEFT JOIN hw_step AS u ON u.node = t.lab",
            {},
        )
        changed = execute(
            "SELECT count(*) FROM hw_next AS n JOIN hw_lab AS o ON o.node = n.node "
            "WHERE n.lab <> o.lab",
            {},
        )
        execute("DROP TABLE hw_lab", {})
        execute("DROP TABLE hw_step", {})
        execute("ALTER TABLE hw_next RENAME TO hw_lab", {})
        if not changed[0][0]:
            break
    # Each identity's component joins its row (``hw_ik`` again, with ``comp``): the
    # steps after read both, and a join of a million rows by ``n`` in each of them
    # cost more than this one copy.
    execute(
        f"{sp.temp.format('hw_w')} SELECT w.*, coalesce(l.lab, w.node) AS comp "
        "FROM hw_ik AS w LEFT JOIN hw_lab AS l ON l.node = w.node",
        {},
    )
    execute("DROP TABLE hw_ik", {})
    execute("ALTER TABLE hw_w RENAME TO hw_ik", {})
    identity_values.analyse(execute, sp, "hw_ik")


def _guarded(execute: Execute, sp: Spelling, job: Job) -> None:
    """Step 4: components holding two first-identifier values go through the guard."""
    found = execute(
        "SELECT l.lab FROM hw_lab AS l JOIN hw_ik AS w ON w.n = l.node "
        "WHERE w.k1 IS NOT NULL GROUP BY l.lab HAVING count(*) > 1",
        {},
    )
    if not found:
        return
    width = len(job.spec.rules)
    keys = "".join(f", w.k{j + 1}" for j in range(width))
    rows = execute(
        f"SELECT w.comp, w.n, w.p, w.s, w.c{keys} FROM hw_ik AS w "
        f"WHERE w.comp IN (SELECT {unnest(sp, 'comps', sp.integer)})",
        {"comps": [int(r[0]) for r in found]},
    )
    by_component: dict[int, list[Member]] = {}
    for r in rows:
        member = Member(int(r[1]), r[2], r[3], r[4], tuple(r[5 : 5 + width]))
        by_component.setdefault(int(r[0]), []).append(member)
    moved_n: list[int] = []
    moved_to: list[int] = []
    for comp, members in by_component.items():
        for part in job.guard(sorted(members, key=lambda m: (m.pipeline_id, m.source_id))):
            label = min(part)
            if label != comp:
                moved_n.extend(part)
                moved_to.extend([label] * len(part))
    if moved_n:
        execute(
            f"UPDATE hw_ik SET comp = x.comp FROM (SELECT {unnest(sp, 'n', sp.integer)} AS n, "
            f"{unnest(sp, 'c', sp.integer)} AS comp) AS x WHERE hw_ik.n = x.n",
            {"n": moved_n, "c": moved_to},
        )
