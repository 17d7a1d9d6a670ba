"""Generated customers: deterministic, varied, and valid against Stripe's schema."""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from headwater.sandbox.config import SandboxConfig
from headwater.sandbox.generate import populate
from headwater.sandbox.service import Sandbox

SHARED = Path(__file__).parents[2].parent / "shared"
CLOCK = 1_780_000_000.0


def _generate(count: int, seed: int, span_days: float = 3 * 365) -> list[dict[str, Any]]:
    sandbox = Sandbox(SandboxConfig(seed=seed, clock_start=CLOCK))
    populate(sandbox, count, seed, span_days)
    return [orjson.loads(blob) for _, _, blob in sandbox.customers.items()]


def _json_schema(node: Any, known: set[str]) -> Any:
    """OpenAPI 3.0 -> JSON Schema: `nullable` admits null; unknown refs admit anything."""
    if isinstance(node, list):
        return [_json_schema(item, known) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[1]
        return {"$ref": f"#/$defs/{name}"} if name in known else {}
    out = {k: _json_schema(v, known) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture(scope="module")
def customer_validator() -> jsonschema.Draft202012Validator:
    text = resources.files("headwater.adapters.connectors.stripe").joinpath("customer-schema.json")
    schemas = json.loads(text.read_text())["schemas"]
    defs = {name: _json_schema(s, set(schemas)) for name, s in schemas.items()}
    schema = {"$defs": defs, "$ref": "#/$defs/customer", "unevaluatedProperties": False}
    return jsonschema.Draft202012Validator(schema)


def test_package_schema_matches_the_shared_copy() -> None:
    shared = SHARED / "stripe" / "customer-schema.json"
    if not shared.exists():
        pytest.skip("no shared/ directory next to the objects")
    packaged = resources.files("headwater.adapters.connectors.stripe").joinpath(
        "customer-schema.json"
    )
    assert json.loads(packaged.read_text()) == json.loads(shared.read_text())


def test_every_generated_customer_validates(customer_validator) -> None:
    customers = _generate(1500, seed=11)
    for customer in customers:
        errors = list(customer_validator.iter_errors(customer))
        assert not errors, (customer["id"], [e.message for e in errors[:3]])
    assert set(customers[0]) >= {"id", "object", "created", "livemode", "email", "address"}
    broken = {**customers[0], "tax_exempt": "sometimes", "surprise": 1}
    assert len(list(customer_validator.iter_errors(broken))) == 2  # the check has teeth


def test_generation_is_deterministic() -> None:
    assert _generate(200, seed=4) == _generate(200, seed=4)
    assert _generate(50, seed=4) != _generate(50, seed=5)


def test_generated_data_is_realistic_and_varied() -> None:
    customers = _generate(3000, seed=2)
    countries = Counter(c["address"]["country"] for c in customers if c["address"])
    assert {"US", "GB", "DE", "FR", "IT", "ES", "JP", "BR", "IN", "AU"} <= set(countries)
    assert any(c["address"] is None for c in customers)
    names = [c["name"] or "" for c in customers]
    scripts = {
        "latin-accented": any(ch in "éüñçãó" for n in names for ch in n),
        "kanji": any("\u4e00" <= ch <= "\u9fff" for n in names for ch in n),
        "devanagari": any("\u0900" <= ch <= "\u097f" for n in names for ch in n),
        "cyrillic": any("\u0400" <= ch <= "\u04ff" for n in names for ch in n),
        "greek": any("\u0370" <= ch <= "\u03ff" for n in names for ch in n),
    }
    assert all(scripts.values()), scripts
    emails = [c["email"] for c in customers]
    assert any(e is None for e in emails)
    assert any(e and e != e.strip() for e in emails)
    assert any(e and e.strip() != e.strip().lower() for e in emails)
    shared = Counter(e for e in emails if e)
    assert any(n == 2 for n in shared.values())
    balances = [c["balance"] for c in customers]
    assert Counter(b == 0 for b in balances)[True] > len(balances) * 0.7
    assert any(b > 0 for b in balances)
    assert any(b < 0 for b in balances)
    assert sum(c["discount"] is not None for c in customers) > 10
    assert {c["tax_exempt"] for c in customers} == {"none", "exempt", "reverse"}
    assert len({c["currency"] for c in customers}) >= 8
    assert any(c["preferred_locales"] for c in customers)
    assert any(c["metadata"] for c in customers)
    assert any(c["phone"] for c in customers)


def test_created_spread_over_the_span() -> None:
    customers = _generate(2000, seed=9, span_days=100)
    created = [c["created"] for c in customers]
    assert created == sorted(created)
    assert min(created) >= CLOCK - 100 * 86400
    assert max(created) < CLOCK
    assert max(created) - min(created) > 90 * 86400
