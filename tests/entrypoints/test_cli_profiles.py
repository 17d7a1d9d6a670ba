"""`headwater identity set|show` and `headwater profiles list|show|rebuild`."""

from __future__ import annotations

import json
from pathlib import Path

import stripe
from tests.entrypoints.test_cli import _connection, doc, invoke

from headwater.sandbox.testing import start_sandbox


def test_identity_and_profiles_commands(home: Path, tmp_path: Path) -> None:
    with start_sandbox(customers=0, seed=5) as sb:
        client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
        one = client.v1.customers.create({"email": "Dee@Example.com", "phone": "1"}).id
        two = client.v1.customers.create({"email": " dee@example.com", "name": "[red]x"}).id
        conn = _connection(sb)
        mapping = tmp_path / "m.json"
        mapping.write_text(json.dumps({"email": "email", "phone": "phone", "first_name": "name"}))
        pid = doc("pipelines", "add", "--connection", conn["id"], "--name", "P",
                  "--mapping", str(mapping))["id"]  # fmt: skip
        assert doc("pipelines", "run", pid)["status"] == "succeeded"

    assert doc("identity", "show")["identifiers"] == ["email"]
    blocked = tmp_path / "blocked.json"
    blocked.write_text(json.dumps({"phone": ["0"]}))
    result = invoke("identity", "set", "--identifiers", "email,phone", "--blocked", str(blocked))
    assert result.exit_code == 0, result.output
    assert doc("identity", "show")["blocked"]["phone"] == ["0"]
    refused = invoke("identity", "set", "--identifiers", "email,nope")
    assert refused.exit_code == 1
    assert "nope" in refused.stderr

    rebuilt = invoke("profiles", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "considered 2 identities" in rebuilt.stdout
    [profile] = doc("profiles", "list", "--search", "DEE@")
    assert profile["identity_count"] == 2
    shown = doc("profiles", "show", profile["id"])
    assert {i["source_id"] for i in shown["identities"]} == {one, two}
    assert {i["pipeline"] for i in shown["identities"]} == {"P"}
    text = invoke("profiles", "show", profile["id"])
    assert text.exit_code == 0
    assert profile["id"] in text.stdout
    assert "first_name: [red]x" in text.stdout  # customer text shown as text, not markup
    assert invoke("profiles", "list").exit_code == 0
    missing = invoke("profiles", "show", "nope")
    assert missing.exit_code == 1
    assert "no profile" in missing.stderr


def test_profile_values_are_shown_as_their_document_spells_them(home: Path, tmp_path: Path) -> None:
    """`profiles show` printed a json property as Python (``{'plan': 'pro'}``) and a
    datetime in Python's spelling (``2024-01-02 03:04:05+00:00``), neither what
    ``--json`` gives nor JSON; values are shown as in the document."""
    with start_sandbox(customers=0, seed=5) as sb:
        client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
        client.v1.customers.create({"email": "meta@example.com", "metadata": {"plan": "pro"}})
        conn = _connection(sb)
        mapping = tmp_path / "m.json"
        mapping.write_text(
            json.dumps({"email": "email", "metadata": "metadata", "created_at": "created"})
        )
        pid = doc("pipelines", "add", "--connection", conn["id"], "--name", "P",
                  "--mapping", str(mapping))["id"]  # fmt: skip
        assert doc("pipelines", "run", pid)["status"] == "succeeded"
    [profile] = doc("profiles", "list", "--search", "meta@")
    values = doc("profiles", "show", profile["id"])["values"]
    text = invoke("profiles", "show", profile["id"]).stdout
    assert 'metadata: {"plan": "pro"}' in text, text
    assert f"created_at: {values['created_at']}" in text, text
    assert "'" not in text, text


#: Decimals as customers give them (metadata text) and as every document spells them.
AMOUNTS = {
    "zero@example.com": ("0.0", "0"),
    "half@example.com": ("12.50", "12.5"),
    "tiny@example.com": ("0.000000001", "0.000000001"),
    "owes@example.com": ("-7.25", "-7.25"),
    "large@example.com": ("100000000000000000000", "100000000000000000000"),
}


def test_decimal_values_are_plain_decimal_text(home: Path, tmp_path: Path) -> None:
    """A decimal read back from the warehouse (DECIMAL(38, 9)) was printed with the
    engine's scale and Python's exponent: ``0E-9``, ``12.500000000``, ``1E-9``, in
    ``profiles show``'s lines and in ``--json``; it is its plain decimal text, as
    the API spells it: ``0``, ``12.5``, ``0.000000001``, ``100000000000000000000``."""
    with start_sandbox(customers=0, seed=5) as sb:
        client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
        for email, (given, _) in AMOUNTS.items():
            client.v1.customers.create({"email": email, "metadata": {"amount": given}})
        conn = _connection(sb)
        assert invoke("model", "add-property", "amount", "decimal").exit_code == 0
        mapping = tmp_path / "m.json"
        mapping.write_text(json.dumps({"email": "email", "amount": "metadata.amount"}))
        pid = doc("pipelines", "add", "--connection", conn["id"], "--name", "P",
                  "--mapping", str(mapping))["id"]  # fmt: skip
        assert doc("pipelines", "run", pid)["status"] == "succeeded"
    for email, (_, spelled) in AMOUNTS.items():
        [profile] = doc("profiles", "list", "--search", email)
        shown = doc("profiles", "show", profile["id"])
        assert shown["values"]["amount"] == spelled, shown["values"]
        assert shown["identities"][0]["values"]["amount"] == spelled
        text = invoke("profiles", "show", profile["id"]).stdout
        assert f"  amount: {spelled}\n" in text, text
