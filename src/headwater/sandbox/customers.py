"""Customer objects: Stripe's defaults, and create/update parameters applied to them."""

from __future__ import annotations

from typing import Any

from headwater.sandbox.errors import invalid, unknown_parameter
from headwater.sandbox.pages import parse_int

ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")
TAX_EXEMPT = ("none", "exempt", "reverse")
UPDATABLE = (
    "address",
    "balance",
    "description",
    "email",
    "invoice_prefix",
    "invoice_settings",
    "metadata",
    "name",
    "next_invoice_sequence",
    "phone",
    "preferred_locales",
    "shipping",
    "tax_exempt",
)
IGNORED = ("expand",)


def new_customer(customer_id: str, created: int, invoice_prefix: str) -> dict[str, Any]:
    """A customer with Stripe's defaults (API version 2024-06-20), before parameters."""
    return {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": invoice_prefix,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def check_expand(params: dict[str, Any]) -> None:
    """``expand`` is a list of field names (the sandbox expands nothing, but checks it)."""
    expand = params.get("expand")
    if expand is not None and not (
        isinstance(expand, list) and all(isinstance(e, str) for e in expand)
    ):
        raise invalid("Invalid array", param="expand")


def apply_params(customer: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Apply create/update parameters in place; return Stripe's ``previous_attributes``."""
    for name in params:
        if name not in UPDATABLE and name not in IGNORED:
            raise unknown_parameter(name)
    check_expand(params)
    previous: dict[str, Any] = {}
    for name in UPDATABLE:
        if name not in params:
            continue
        old = customer.get(name)
        new = _convert(name, params[name], old)
        if new == old:
            continue
        customer[name] = new
        previous[name] = _changed_part(old, new)
    return previous


def _changed_part(old: Any, new: Any) -> Any:
    """For hashes, only the keys that changed (None for added keys), as Stripe reports."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = set(old) | set(new)
        return {k: old.get(k) for k in sorted(keys) if old.get(k) != new.get(k)}
    return old


def _convert(name: str, value: Any, old: Any) -> Any:
    if name == "metadata":
        return _metadata(value, old)
    if name == "address":
        return None if value == "" else _address(value, old, "address")
    if name == "shipping":
        return None if value == "" else _shipping(value)
    if name == "balance":
        return parse_int(value, name)
    if name == "next_invoice_sequence":
        number = parse_int(value, name)
        if number < 1:
            raise invalid("This value must be greater than or equal to 1.", param=name)
        return number
    if name == "preferred_locales":
        if value == "":
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid("Invalid array", param=name)
        return value
    if name == "tax_exempt":
        value = "none" if value == "" else value
        if value not in TAX_EXEMPT:
            raise invalid(f"Invalid tax_exempt: must be one of {', '.join(TAX_EXEMPT)}", name)
        return value
    if name == "invoice_settings":
        return _invoice_settings(value, old)
    return _text(value, name)


def _text(value: Any, name: str) -> str | None:
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {value!r}", param=name)
    if value == "":
        return None
    if len(value) > 5000:
        raise invalid("This value must be at most 5000 characters.", param=name)
    if name == "email" and ("@" not in value or len(value) > 512):
        raise invalid(f"Invalid email address: {value}", param=name, code="email_invalid")
    if name == "invoice_prefix" and not (3 <= len(value) <= 12 and value.isalnum()):
        raise invalid("Invalid invoice_prefix: 3-12 letters or digits", param=name)
    return value


def _metadata(value: Any, old: Any) -> dict[str, str]:
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid("Invalid hash", param="metadata")
    result = dict(old or {})
    for key, item in value.items():
        if not isinstance(item, str):
            raise invalid("Invalid string", param=f"metadata[{key}]")
        if len(key) > 40:
            raise invalid("Metadata keys can have up to 40 characters.", f"metadata[{key}]")
        if len(item) > 500:
            raise invalid("Metadata values can have up to 500 characters.", f"metadata[{key}]")
        if item == "":
            result.pop(key, None)
        else:
            result[key] = item
    if len(result) > 50:
        raise invalid("You can have up to 50 metadata keys.", param="metadata")
    return result


def _address(value: Any, old: Any, param: str) -> dict[str, str | None]:
    if not isinstance(value, dict):
        raise invalid("Invalid hash", param=param)
    result: dict[str, str | None] = dict(old) if isinstance(old, dict) else {}
    for field in ADDRESS_FIELDS:
        result.setdefault(field, None)
    for key, item in value.items():
        if key not in ADDRESS_FIELDS:
            raise unknown_parameter(f"{param}[{key}]")
        result[key] = _text(item, f"{param}[{key}]")
    return result


def _shipping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("Invalid hash", param="shipping")
    if not value.get("name"):
        raise invalid("Missing required param: shipping[name].", param="shipping[name]")
    for key in value:
        if key not in ("name", "phone", "address"):
            raise unknown_parameter(f"shipping[{key}]")
    return {
        "address": _address(value.get("address", {}), None, "shipping[address]"),
        "name": _text(value["name"], "shipping[name]"),
        "phone": _text(value.get("phone", ""), "shipping[phone]"),
    }


def _invoice_settings(value: Any, old: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("Invalid hash", param="invoice_settings")
    result = dict(old or {})
    for key, item in value.items():
        param = f"invoice_settings[{key}]"
        if key in ("footer", "default_payment_method"):
            result[key] = _text(item, param)
        elif key == "custom_fields":
            if item == "":
                result[key] = None
            elif isinstance(item, list) and all(isinstance(f, dict) for f in item):
                result[key] = [{"name": f.get("name"), "value": f.get("value")} for f in item]
            else:
                raise invalid("Invalid array", param=param)
        else:
            raise unknown_parameter(param)
    return result
