"""Regression tests for sandbox defects found by the outside audit (issue 17 §8)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import stripe

HUGE = str(10**30)
INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("path", "param", "query"),
    [
        ("/v1/customers", "limit", {"limit": HUGE}),
        ("/v1/customers", "created", {"created": HUGE}),
        ("/v1/customers", "created[gte]", {"created[gte]": "-" + HUGE}),
        ("/v1/events", "created[lt]", {"created[lt]": HUGE}),
    ],
)
def test_query_integers_outside_int64_are_400_naming_the_param(
    fresh, path: str, param: str, query: dict[str, str]
) -> None:
    auth = {"Authorization": f"Bearer {fresh.secret_key}"}
    response = httpx.get(f"{fresh.url}{path}", params=query, headers=auth)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


@pytest.mark.parametrize("param", ["balance", "next_invoice_sequence"])
def test_form_integers_outside_int64_are_400_naming_the_param(fresh, sdk, param: str) -> None:
    client = sdk(fresh)
    with pytest.raises(stripe.InvalidRequestError) as create:
        client.v1.customers.create({param: 10**30})
    assert create.value.http_status == 400
    assert create.value.param == param
    customer = client.v1.customers.create({"name": "kept"})
    for value in (INT64_MAX + 1, -(INT64_MAX + 2)):
        with pytest.raises(stripe.InvalidRequestError) as update:
            client.v1.customers.update(customer.id, {param: value})
        assert update.value.param == param
    # The edge of the range is still accepted, and nothing was changed by the refusals.
    if param == "balance":
        edge = client.v1.customers.update(customer.id, {"balance": INT64_MAX})
        assert edge.balance == INT64_MAX
    assert fresh.stats()["customers"] == 1
    assert fresh.stats()["server_errors"] == 0


def test_busy_port_says_so_and_exits_non_zero() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "headwater.sandbox", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    assert f"port {port} is already in use" in output
    assert "--port" in output


def _sandbox_run(*args: str, port: int = 0) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "headwater.sandbox", "--port", str(port), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b'H\t{"format":2,"clock_offset":null,"seq":0}\n', 1),  # a NaN clock saved as null
        (b'H\t{"format":2,"clock_offset":0.0,"seq":0}\nC\t12\tcus_x\n', 2),
        (b'H\t["not", "a", "header"]\n', 1),
        (b"\xff\xfe garbage\n", 1),
    ],
)
def test_a_bad_state_file_says_which_line_and_exits_non_zero(
    tmp_path: Path, content: bytes, line: int
) -> None:
    state = tmp_path / "sandbox.state"
    state.write_bytes(content)
    code, output = _sandbox_run("--state", str(state))
    assert code != 0
    assert "Traceback" not in output
    assert f"{state}:{line}:" in output
    assert state.read_bytes() == content  # left as it was, for the user to mend


def test_a_state_file_that_could_not_be_saved_is_refused_at_start(tmp_path: Path) -> None:
    missing = tmp_path / "no such directory" / "sandbox.state"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))  # a start that got past the options stops here
        busy.listen(1)
        port = busy.getsockname()[1]
        not_there = _sandbox_run("--state", str(missing), port=port)
        a_directory = _sandbox_run("--state", str(tmp_path), port=port)
    for (code, output), named in ((not_there, missing.parent), (a_directory, tmp_path)):
        assert code == 2, output
        assert "Traceback" not in output
        assert "--state" in output
        assert str(named) in output


def test_form_keys_with_non_ascii_digits_are_names_not_list_indexes(fresh, sdk) -> None:
    client = sdk(fresh)
    made = client.v1.customers.create({"metadata": {"²": "x", "٣": "y"}})
    assert made.metadata.to_dict() == {"²": "x", "٣": "y"}
    with pytest.raises(stripe.InvalidRequestError) as locales:
        client.v1.customers.create({"preferred_locales": {"²": "en"}})
    assert locales.value.http_status == 400
    assert locales.value.param == "preferred_locales"
    auth = {"Authorization": f"Bearer {fresh.secret_key}"}
    for path in ("/v1/customers", "/v1/events"):
        listed = httpx.get(f"{fresh.url}{path}", params={"expand[²]": "x"}, headers=auth)
        assert listed.status_code == 400, listed.text
        error = listed.json()["error"]
        assert (error["type"], error["param"]) == ("invalid_request_error", "expand")
    # An index longer than int() converts is still an index (indexes only give the order).
    long_index = f"preferred_locales[{'9' * 5000}]"
    kept = httpx.post(f"{fresh.url}/v1/customers", data={long_index: "fr"}, headers=auth)
    assert kept.status_code == 200, kept.text
    assert kept.json()["preferred_locales"] == ["fr"]
    assert fresh.stats()["server_errors"] == 0
