"""Request and response documents of the resource routes, one module per resource.

Bodies are ``XCreate`` / ``XUpdate`` (unknown fields refused), responses ``XPublic``,
lists ``XList`` (``{"data": [...], "has_more": bool}``).  Responses hold the same JSON
documents as the CLI's ``--json`` output; `plain` turns a service document into JSON
values the way the CLI prints them (datetimes in ISO 8601).
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from headwater.kernel.values import document_value


class Body(BaseModel):
    """A request body: a field the API does not know is an error, never ignored, and
    a value of the wrong JSON type is an error, never coerced (``"enabled": 0`` is not
    false, ``"name": 5`` is not a name)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Patch(Body):
    """A PATCH body: an absent field keeps its value; null is refused for every field
    but those in `NULLABLE` (a null name or schedule was answered 200 and changed
    nothing)."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls.NULLABLE:
            raise PydanticCustomError("null_refused", "cannot be null (leave it out to keep it)")
        return value


def plain(value: Any) -> Any:
    """`value` with datetimes and dates as ISO 8601 text and decimals as plain text
    (`decimal_text`), as the CLI's ``--json`` prints them (orjson writes an aware
    datetime exactly as `datetime.isoformat` does)."""
    return orjson.loads(json_bytes(value))


def json_bytes(value: Any) -> bytes:
    """`value` as the JSON the CLI's ``--json`` prints, compact."""
    return orjson.dumps(value, default=document_value, option=orjson.OPT_NON_STR_KEYS)
