"""The Stripe connector: reads customers and their changes from the Stripe API.

Public surface: `StripeSource`, `StripeSettings`, `STRIPE` (the declaration),
`check_key_format`, `verify_key`, `KeyAccess` and the errors in `.errors`.
"""

from __future__ import annotations

from headwater.adapters.connectors.stripe.declaration import STRIPE, StripeSettings
from headwater.adapters.connectors.stripe.errors import (
    InvalidKey,
    MalformedKey,
    PermissionMissing,
    RetriesExhausted,
    SourceUnreachable,
)
from headwater.adapters.connectors.stripe.keys import KeyAccess, check_key_format, verify_key
from headwater.adapters.connectors.stripe.source import StripeSource

__all__ = [
    "STRIPE",
    "InvalidKey",
    "KeyAccess",
    "MalformedKey",
    "PermissionMissing",
    "RetriesExhausted",
    "SourceUnreachable",
    "StripeSettings",
    "StripeSource",
    "check_key_format",
    "verify_key",
]
