"""The workspace's Customer Model, warehouse and identity resolution documents."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, Field, SecretStr

from headwater.entrypoints.api.schemas import Body
from headwater.kernel.model import PropertyType

TypeName = Literal[
    "string",
    "integer",
    "float",
    "decimal",
    "boolean",
    "datetime",
    "date",
    "json",
    "array",
    "object",
]
assert set(get_args(TypeName)) == {t.value for t in PropertyType}, "the model's own types"


class PropertyPublic(BaseModel):
    name: str = Field(description="The property's name (`^[a-z][a-z0-9_]*$`).")
    type: str = Field(description="Its type: " + ", ".join(t.value for t in PropertyType) + ".")
    description: str | None = Field(
        default=None, description="What it holds; absent when it has no description."
    )
    properties: list[PropertyPublic] | None = Field(
        default=None, description="An `object` property's own properties, in order."
    )


class ModelPublic(BaseModel):
    properties: list[PropertyPublic] = Field(
        description="The Customer Model's properties, in order (each one or more "
        "warehouse columns: `address.city` is `address_city`)."
    )


class PropertyCreate(Body):
    path: str = Field(
        min_length=1,
        max_length=200,
        description="Where to add it: `plan`, or `address.region` inside an object property.",
    )
    type: TypeName = Field(description="The property's type.")
    description: str = Field(default="", max_length=1000, description="What it holds.")


class PropertyRename(Body):
    name: str = Field(
        min_length=1,
        max_length=60,
        description="The new name (its columns are renamed, data kept).",
    )


class WarehousePublic(BaseModel):
    url: str = Field(description="The warehouse URL with any password masked.")
    engine: str = Field(description="`duckdb` or `postgresql`.")
    identities: int = Field(description="Identity rows it holds (one per pipeline and customer).")
    profiles: int = Field(description="Unified profiles it holds.")


class WarehouseSet(Body):
    url: SecretStr = Field(
        min_length=1,
        max_length=2000,
        description="`duckdb:////absolute/path.duckdb` or `postgresql://user:pass@host/db`; "
        "tested (its tables created) before it is saved, stored encrypted, shown masked. "
        "Each pipeline's next run after a switch is a full one.",
    )


class IdentityPublic(BaseModel):
    identifiers: list[str] = Field(
        description="Customer Model properties that link identities, in order of trust."
    )
    blocked: dict[str, list[str | int]] = Field(
        description="Per identifier, values that never link anything (`test@example.com`)."
    )


class IdentitySet(Body):
    identifiers: list[str] = Field(
        min_length=1,
        max_length=20,
        description="Ordered identifiers: string or integer Customer Model properties.",
    )
    blocked: dict[str, list[str | int]] | None = Field(
        default=None,
        description=(
            "Per identifier, values that never link anything (`*`: any run of "
            "characters); a list replaces that identifier's defaults, and an identifier "
            "without one (or `blocked` absent) gets the defaults (placeholders such as "
            "`n/a`, `test@example.com`, `noreply@*`). At most 10,000 values of 500 "
            "characters each."
        ),
    )
