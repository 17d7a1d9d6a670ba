"""How an engine spells identity resolution's statements where engines differ
(`profile_store`, `identity_rebuild`, `identity_profiles`, `identity_values`,
`identity_keys`, `identity_scans`); each SQL warehouse has one (`sql_warehouse.spelling_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from headwater.adapters.warehouse.ownership import Placeholder
from headwater.kernel.model import PropertyType


@dataclass(frozen=True)
class Spelling:
    """How an engine spells what differs: placeholders and the types of casts."""

    ph: Placeholder
    text: str  # text type (VARCHAR, text)
    integer: str  # 64-bit integer type
    profile_key: str  # type of _profile_id
    #: Model types whose bound value is cast (JSON bound as text, decimals).
    casts: Mapping[PropertyType, str] = field(default_factory=dict)
    #: Column type of each model type (values are bound as typed arrays).
    types: Mapping[PropertyType, str] = field(default_factory=dict)
    timestamptz: str = "timestamptz"
    #: Turns a JSON text expression (``{}``) into a text array.
    array_from_json: str = "CAST(CAST({} AS JSON) AS VARCHAR[])"
    #: ``{0}`` as type ``{1}``, null where it is no such value (a profile id that is
    #: no UUID finds nothing).
    try_cast: str = "TRY_CAST({0} AS {1})"
    #: JSON text of the array expression ``{0}``.
    to_json: str = "CAST(to_json({0}) AS VARCHAR)"
    #: Appended to a text expression to compare and lower-case it by code point.
    collate: str = ""
    #: A condition true when the text ``{0}`` is ASCII only.
    ascii: str = "strlen({0}) = length({0})"
    #: The bytes of the text ``{0}``.
    text_bytes: str = "strlen({0})"
    #: Starts a statement creating the work table ``{0}`` of one transaction.
    temp: str = "CREATE OR REPLACE TEMP TABLE {0} AS"
    #: ``{0}`` is among the rows of the subquery ``{1}`` (PostgreSQL: as an array, so
    #: the planner probes an index whatever its row estimate of the subquery).
    in_set: str = "{0} IN ({1})"
    #: Run before an incremental resolution's lookups, which are index probes by design
    #: (PostgreSQL: its row estimates for bound arrays, and for tables not analysed
    #: yet, led it to scan and sort ``identities`` whole: 1.8 s instead of 20 ms).
    probe_setup: str | None = None
    #: Whether the key table gets indexes (point lookups; DuckDB joins by hashing).
    key_indexes: bool = False
    #: Numbers the identities ``i`` of a full rebuild: unique, in no order (no sort of a
    #: million keys; where the rules need identity-key order, the rebuild orders by key).
    numbered: str = "i.rowid"
    #: The column of ``identities`` that a rebuild's number is (DuckDB's ``rowid``: the
    #: rebuild fetches rows by it within its transaction); None: rows are found by key.
    row_id: str | None = "rowid"
    #: The number ``{0}`` of the member with the smallest (pipeline ``{1}``, source
    #: ``{2}``) of a group (an aggregate).
    first_member: str = "arg_min({0}, ({1}, {2}))"
    #: Statements run first in a full rebuild's transaction (engine tuning).
    rebuild_setup: tuple[str, ...] = ()
    #: Statements gathering the statistics of work tables ``{0}`` (PostgreSQL: without,
    #: each is estimated at a few hundred rows and joined by sorts).
    analyze: tuple[str, ...] = ()
    #: (name, column) of the plain indexes of ``identities`` a rebuild drops and builds
    #: again around an update of many memberships (PostgreSQL: see `identity_profiles`).
    member_indexes: tuple[tuple[str, str], ...] = ()
    #: The first non-null value ``{0}`` of a profile's members by rank, over the window
    #: ``byrank`` (DuckDB's ``IGNORE NULLS``: a rebuild's values in one pass, without
    #: joins holding whole rows); ``None`` where the engine has none (`identity_values`).
    first_by: str | None = "first_value({0} IGNORE NULLS) OVER byrank"
    #: Query of (name, definition) of the unique keys of table ``table``, which a rebuild
    #: writing many of its rows drops and adds again (None: kept; `identity_profiles`).
    unique_constraints: str | None = None
    #: `sql.TypeMapper.uuid_bits`.
    uuid_bits: bool = False
