"""Warehouse adapters: one `Warehouse` protocol (contract.py), one module per engine."""

from __future__ import annotations

from headwater.adapters.warehouse.contract import (
    Capabilities,
    OwnedState,
    OwnershipLost,
    Warehouse,
    WarehouseError,
    WriteBatch,
    WriteResult,
)
from headwater.adapters.warehouse.engines import ENGINES, check, connect

__all__ = [
    "ENGINES",
    "Capabilities",
    "OwnedState",
    "OwnershipLost",
    "Warehouse",
    "WarehouseError",
    "WriteBatch",
    "WriteResult",
    "check",
    "connect",
]
