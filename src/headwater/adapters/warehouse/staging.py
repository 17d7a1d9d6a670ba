"""Engine-neutral preparation of a batch before it is staged in an engine."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from headwater.adapters.warehouse.sql import TypeMapper
from headwater.kernel.errors import InvalidInput
from headwater.kernel.model import Column, PropertyType
from headwater.kernel.records import IdentityRow

# Up to the authority's last '@' (a password may hold an unencoded '@' or '/').
_PASSWORD = re.compile(r"(://[^:/@\s]*:)(\S*?)(@)(?=[^@\s/]*(?:[/?#\s]|$))")
# libpq also takes the password as a query parameter or a conninfo key, and the client
# key's passphrase as sslpassword.
_PASSWORD_PARAM = re.compile(r"(\b(?:ssl)?password\s*=\s*)('[^']*'|[^&\s]*)", re.IGNORECASE)


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


def retyped_columns(
    types: TypeMapper, have: Mapping[str, str], columns: Sequence[Column]
) -> dict[str, str]:
    """Why each column in `have` (name -> catalogue type) whose type is not its model
    property's cannot take that property's values.  The tables are not altered: such a
    column was made under the property's earlier type (a workspace back on a warehouse
    it left before dropping and adding the property), and its values are the user's."""
    out: dict[str, str] = {}
    for col in columns:
        if col.name in have and (kind := types.from_column(have[col.name])) is not col.type:
            out[col.name] = (
                f"column {col.name!r} is {kind.value} in the warehouse but {col.type.value} "
                "in the Customer Model (drop or rename that column, or give the property "
                "its type back)"
            )
    return out


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
