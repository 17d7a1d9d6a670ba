"""Request and response documents of the resource routes, one module per resource.

Bodies are ``XCreate`` / ``XUpdate`` (unknown fields refused), responses ``XPublic``,
lists ``XList`` (``{"data": [...], "has_more": bool}``).  Responses hold the same JSON
documents as the CLI's ``--json`` output; `plain` turns a service document into JSON
values the way the CLI prints them (datetimes in ISO 8601).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict


class Body(BaseModel):
    """A request body: a field the API does not know is an error, never ignored."""

    model_config = ConfigDict(extra="forbid")


def plain(value: Any) -> Any:
    """`value` with datetimes and dates as ISO 8601 text and decimals as text, as the
    CLI's ``--json`` prints them."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
