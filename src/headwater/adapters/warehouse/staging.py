"""Engine-neutral preparation of a batch before it is staged in an engine."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from headwater.kernel.errors import InvalidInput
from headwater.kernel.model import PropertyType
from headwater.kernel.records import IdentityRow

# A fixed namespace so that profile ids are the same on every machine and every run.
_PROFILES = uuid.UUID("5b0f5f0e-8c1e-4d59-9a8e-6f1f2f4c9a10")
_NS = _PROFILES.bytes
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s]*)(@)")
# libpq also takes the password as a query parameter or a conninfo key.
_PASSWORD_PARAM = re.compile(r"(\bpassword\s*=\s*)('[^']*'|[^&\s]*)", re.IGNORECASE)


def profile_id(pipeline_id: str, source_id: str) -> str:
    """The stable profile id of an identity that has no other identity to merge with.

    Equal to ``str(uuid.uuid5(namespace, pipeline_id + "\\x1f" + source_id))``.
    """
    return profile_ids(pipeline_id, [source_id])[0]


def profile_ids(pipeline_id: str, source_ids: Iterable[str]) -> list[str]:
    """`profile_id` for many source ids of one pipeline, without building UUID objects.

    It runs for every row written, so the hash of the common prefix is reused.
    """
    # SHA-1 here is the UUIDv5 algorithm, a stable name hash, not a security measure.
    base = hashlib.sha1(_NS + f"{pipeline_id}\x1f".encode(), usedforsecurity=False)
    out = []
    for source_id in source_ids:
        h = base.copy()
        h.update(source_id.encode())
        x = h.hexdigest()
        # Version 5 in the 13th hex digit, the RFC 4122 variant in the 17th.
        out.append(f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}")
    return out


def latest_rows(rows: Iterable[IdentityRow]) -> list[IdentityRow]:
    """One row per source id; when a batch repeats a source id the last one wins."""
    by_id: dict[str, IdentityRow] = {}
    for row in rows:
        by_id.pop(row.source_id, None)  # re-insert so the order follows the last occurrence
        by_id[row.source_id] = row
    return list(by_id.values())


def check_row_columns(rows: Sequence[IdentityRow], known: Mapping[str, PropertyType]) -> None:
    used: set[str] = set().union(*(row.values.keys() for row in rows))
    if used <= known.keys():
        return
    for row in rows:
        unknown = [name for name in row.values if name not in known]
        if unknown:
            raise InvalidInput(
                f"row {row.source_id!r} has values for unknown warehouse column(s) "
                f"{', '.join(sorted(unknown))}; call ensure_columns with the Customer Model first",
                "rows",
            )


def json_text(value: Any) -> str | None:
    """JSON values are staged as text and cast by the engine."""
    if value is None:
        return None
    return orjson.dumps(value, default=str).decode()


def json_value(value: Any) -> Any:
    """Engines that hand JSON back as text get it parsed, so every engine reads alike."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def column_values(rows: Sequence[IdentityRow], name: str, ptype: PropertyType) -> list[Any]:
    values = [row.values.get(name) for row in rows]
    if ptype is PropertyType.JSON:
        return [json_text(v) for v in values]
    return values


def hide_password(text: str) -> str:
    """Strip the password of any URL in `text` (connection errors echo the URL)."""
    return _PASSWORD_PARAM.sub(r"\1***", _PASSWORD.sub(r"\1***\3", text))
