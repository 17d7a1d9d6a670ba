"""A command's error names the option the user typed (``--requests-per-second``), not
the API's field (``requests_per_second``), when the service's error is located at a
field that an option of that command gives; the ``--json`` error document stays the
API's, ``field`` and ``message`` included (scripts read them).  A location that is not
such a field (a property of a mapping file, a model path given as an argument, a field
no option of the command gives) is printed as the service located it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cli_process import MAIN, run_cli

from headwater.sandbox.testing import RunningSandbox, start_sandbox

KEY = {"KEY": "sk_test_sandbox"}


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(customers=1) as sb:
        yield sb


def _refused(*args: str, env: dict[str, str] | None = None) -> tuple[str, dict[str, Any]]:
    """The one-line error the command prints on stderr, and its ``--json`` document."""
    plain = run_cli(*args, env=env)
    assert plain.returncode == 1, (plain.stdout, plain.stderr)
    assert plain.stdout == "", plain.stdout
    assert plain.stderr.startswith("error: "), plain.stderr
    shown = plain.stderr.removeprefix("error: ").rstrip("\n")
    as_json = run_cli(*args, "--json", env=env)
    assert as_json.returncode == 1, (as_json.stdout, as_json.stderr)
    assert as_json.stderr == plain.stderr  # the same line, with --json too
    document: dict[str, Any] = json.loads(as_json.stdout)["error"]
    return shown, document


def _connection(sb: RunningSandbox) -> str:
    done = run_cli(
        "connections", "add", "stripe", "--name", "Sandbox", "--base-url", sb.url,
        "--api-key-env", "KEY", "--json", env=KEY,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["id"])


def test_connection_errors_name_the_options(home: Path, sandbox: RunningSandbox) -> None:
    shown, document = _refused(
        "connections", "add", "stripe", "--name", "x", "--base-url", sandbox.url,
        "--api-key-env", "KEY", "--requests-per-second", "0", env=KEY,
    )  # fmt: skip
    assert shown == "--requests-per-second: must be from 0.1 to 1000 requests per second"
    assert document == {
        "type": "invalid_input",
        "message": "requests_per_second: must be from 0.1 to 1000 requests per second",
        "field": "requests_per_second",
    }

    shown, document = _refused(
        "connections", "add", "stripe", "--name", "x", "--base-url", "nope",
        "--api-key-env", "KEY", env=KEY,
    )  # fmt: skip
    assert shown.startswith("--base-url: must be an http:// or https:// URL"), shown
    assert document["field"] == "base_url"
    assert document["message"].startswith("base_url: must be an http:// or https:// URL")

    conn = _connection(sandbox)
    shown, document = _refused("connections", "update", conn, "--requests-per-second", "5000")
    assert shown == "--requests-per-second: must be from 0.1 to 1000 requests per second"
    assert document["field"] == "requests_per_second"
    shown, document = _refused("connections", "update", conn, "--name", "")
    assert shown == "--name: a connection needs a name of 1 to 200 characters"
    assert document == {
        "type": "invalid_input",
        "message": "name: a connection needs a name of 1 to 200 characters",
        "field": "name",
    }
    shown, document = _refused("connections", "webhook", conn, "--url", "https://x.example/?a=1")
    assert shown == "--url: must have no query or fragment"
    assert document["message"] == "url: must have no query or fragment"
    assert document["field"] == "url"


def test_identity_and_token_errors_name_the_options(home: Path) -> None:
    shown, document = _refused("identity", "set", "--identifiers", "email,nope")
    assert shown == "--identifiers[1]: 'nope' is not a Customer Model property"
    assert document == {
        "type": "invalid_input",
        "message": "identifiers[1]: 'nope' is not a Customer Model property",
        "field": "identifiers[1]",
    }
    shown, document = _refused("identity", "set", "--identifiers", " , ")
    assert shown == "--identifiers: at least one identifier is needed"
    assert document["field"] == "identifiers"

    shown, document = _refused("tokens", "create", "--name", "")
    assert shown == "--name: a token needs a name of 1 to 200 characters"
    assert document["message"] == "name: a token needs a name of 1 to 200 characters"
    assert document["field"] == "name"


def test_pipeline_errors_name_the_options_and_a_mapping_keeps_its_properties(
    home: Path, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    conn = _connection(sandbox)
    shown, document = _refused("pipelines", "add", "--connection", conn, "--name", "")
    assert shown == "--name: a pipeline needs a name of 1 to 200 characters"
    assert document["field"] == "name"
    assert document["message"] == "name: a pipeline needs a name of 1 to 200 characters"

    # A Customer Model property called `name`: a mapping's error located there is about
    # that property of the --mapping file, not about --name.
    added = run_cli("model", "add-property", "name", "string")
    assert added.returncode == 0, added.stderr
    mapping = tmp_path / "mapping.json"
    mapping.write_text('{"name": 5}')
    args = ("pipelines", "add", "--connection", conn, "--name", "p", "--mapping", str(mapping))
    shown, document = _refused(*args)
    assert shown == "name: the expression must be a string, got 5"
    assert document["field"] == "name"

    # A model path given as an argument, equal to an option's name, stays the path.
    added = run_cli("model", "add-property", "description", "string")
    assert added.returncode == 0, added.stderr
    again = ("model", "add-property", "description", "string", "--description", "d")
    shown, document = _refused(*again)
    assert shown == "description: property 'description' already exists"
    assert document["field"] == "description"


def test_a_field_no_option_gives_is_printed_as_located(home: Path) -> None:
    shown, document = _refused("users", "invite", "not-an-email")  # EMAIL, an argument
    assert shown == "email: must be an email address such as ada@example.com"
    assert document["field"] == "email"
    shown, document = _refused(
        "connections", "add", "stripe", "--name", "x", "--api-key-env", "NOPE_UNSET"
    )
    assert shown == "--api-key-env: environment variable NOPE_UNSET is not set"
    assert document["field"] == "--api-key-env"


def test_a_secret_read_through_an_option_names_that_option(home: Path, tmp_path: Path) -> None:
    """A key or password given by ``--api-key-env``, ``--api-key-file`` or
    ``--password-stdin`` is refused at the option the user typed, not at the API's
    ``api_key`` or ``password`` (which name nothing the user can type)."""
    bad = {"KEY": "sk_test_" + "!" * 30}
    shown, document = _refused(
        "connections", "add", "stripe", "--name", "x", "--api-key-env", "KEY", env=bad
    )
    assert shown.startswith("--api-key-env: the key after sk_test_ is"), shown
    assert document["field"] == "api_key"
    assert document["message"].startswith("api_key: the key after sk_test_ is")

    key = tmp_path / "key"
    key.write_text("sk_test_short\n")
    shown, document = _refused(
        "connections", "add", "stripe", "--name", "x", "--api-key-file", str(key)
    )
    assert shown.startswith("--api-key-file: the key after sk_test_ is"), shown
    assert document["field"] == "api_key"

    done = subprocess.run(
        [sys.executable, "-c", MAIN, "users", "add", "bob@example.com", "--password-stdin"],
        input="short\n", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr == "error: --password-stdin: must be at least 8 characters long\n"
