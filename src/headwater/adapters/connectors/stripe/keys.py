"""Checking a Stripe key before it is saved: its format, then what it may read."""

from __future__ import annotations

import re
from dataclasses import dataclass

from headwater.adapters.connectors.contract import PermissionMissing
from headwater.adapters.connectors.stripe.declaration import STRIPE, StripeSettings
from headwater.adapters.connectors.stripe.errors import MalformedKey
from headwater.adapters.connectors.stripe.http import StripeHTTP
from headwater.kernel.errors import HeadwaterError, mask_secret

# Real keys are long; the sandbox's documented key `sk_test_sandbox` has a 7-character body.
_BODY = re.compile(r"^[A-Za-z0-9_]{6,}$")


@dataclass(frozen=True)
class KeyAccess:
    """What a verified key can do."""

    customers_read: bool
    events_read: bool
    livemode: bool
    #: The Stripe account (``acct_…``) the key belongs to; None when Stripe did not say.
    account_id: str | None = None


# Stripe's permission errors name the account: "... for this endpoint on account 'acct_…'".
_ACCOUNT = re.compile(r"on account '(acct_[A-Za-z0-9_]+)'")


def account_in_message(message: str) -> str | None:
    """The ``acct_…`` id a Stripe permission error names, if any."""
    found = _ACCOUNT.search(message)
    return found.group(1) if found else None


def is_live_key(key: str) -> bool:
    """Whether `key` (or its masked form, which keeps the prefix) is a live-mode key:
    live and test mode are two sets of customers and events, even in one account."""
    return key.startswith(("sk_live_", "rk_live_"))


def check_key_format(key: str) -> str:
    """The key's prefix (``sk_live_``, ``rk_test_``, ...); `MalformedKey` unless `key`
    looks like a secret or restricted key."""
    if not isinstance(key, str) or not key.strip():
        raise MalformedKey("an API key is required", "api_key")
    if key != key.strip():
        raise MalformedKey("remove the spaces around the API key", "api_key")
    prefix = next((p for p in STRIPE.key_prefixes if key.startswith(p)), None)
    if prefix is None:
        shown = mask_secret(key) if key.startswith(("pk_", "whsec_")) else "this value"
        hint = " (a publishable key cannot read customers)" if key.startswith("pk_") else ""
        raise MalformedKey(
            f"{shown} is not a Stripe secret or restricted key{hint}; expected a key "
            "starting with sk_live_, sk_test_, rk_live_ or rk_test_",
            "api_key",
        )
    if not _BODY.match(key[len(prefix) :]):
        raise MalformedKey(
            f"the key after {prefix} is truncated or contains invalid characters", "api_key"
        )
    return prefix


#: Retries of the live key check after a failure to reach Stripe at all.  A person waits
#: for the check (adding a source in the console, the API or the CLI): a mistyped or
#: unreachable URL answers after ~1.5 s of backoff instead of the ~25 s of a run's six
#: retries.  429s and 5xx are still ridden out like a run's.
VERIFY_NETWORK_RETRIES = 2


def verify_key(
    base_url: str,
    key: str,
    timeout: float = 10.0,
    *,
    backoff_base: float = StripeSettings.backoff_base,
    proxy: str | None = None,
) -> KeyAccess:
    """Check the key against Stripe: Customers: Read is required, Events: Read probed.

    Transient failures (429, 5xx) are retried with the bounded policy that runs use
    (`StripeSettings.max_retries` retries, exponential backoff from `backoff_base`
    seconds, `Retry-After` honoured up to a minute); failures to reach Stripe at all,
    `VERIFY_NETWORK_RETRIES` times.

    Raises `MalformedKey`, `InvalidKey` (401), `PermissionMissing` (Customers: Read),
    `RetriesExhausted` or `SourceUnreachable`.
    """
    check_key_format(key)
    settings = StripeSettings(
        base_url=base_url,
        api_key=key,
        timeout=timeout,
        backoff_base=backoff_base,
        network_retries=VERIFY_NETWORK_RETRIES,
        proxy=proxy,
    )
    http = StripeHTTP(settings)
    try:
        reply = http.get("/v1/customers", {"limit": 1})
        try:
            http.get("/v1/events", {"limit": 1})
            events_read = True
        except PermissionMissing:
            events_read = False
        account_id = _account_id(http)
    finally:
        http.close()
    data = reply.body.get("data")
    first = data[0] if isinstance(data, list) and data else None
    livemode = first.get("livemode") if isinstance(first, dict) else None
    if not isinstance(livemode, bool):
        livemode = is_live_key(key)
    return KeyAccess(
        customers_read=True, events_read=events_read, livemode=livemode, account_id=account_id
    )


def _account_id(http: StripeHTTP) -> str | None:
    """The key's account: `GET /v1/account`, or the account Stripe's refusal names (a
    restricted key without the permission); None when neither says (an API that has no
    such path).  A transient failure propagates: the check did not finish."""
    try:
        reply = http.get("/v1/account", {})
    except PermissionMissing as exc:
        return account_in_message(exc.message)
    except HeadwaterError as exc:
        if exc.transient:
            raise
        return account_in_message(exc.message)
    found = reply.body.get("id")
    return found if isinstance(found, str) and found.startswith("acct_") else None
