"""Settings read from the environment at the entry points (and only there)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from headwater.entrypoints.cli.commands import cli
from headwater.entrypoints.environment import settings_from_env
from headwater.kernel.errors import InvalidInput


def test_embedded_defaults_under_home(tmp_path: Path) -> None:
    settings = settings_from_env({"HEADWATER_HOME": str(tmp_path)})
    assert settings.home == tmp_path
    assert settings.database_url == f"sqlite:///{tmp_path / 'headwater.db'}"
    assert settings.secret_key is None
    assert settings.run_lease_seconds == 30.0
    assert settings.stripe_max_in_flight == 20


def test_every_variable_is_read(tmp_path: Path) -> None:
    settings = settings_from_env(
        {
            "HEADWATER_HOME": str(tmp_path),
            "HEADWATER_DATABASE_URL": "postgresql://u@h/db",
            "HEADWATER_SECRET_KEY": "k",
            "HEADWATER_RUN_LEASE_SECONDS": "2.5",
            "HEADWATER_STRIPE_MAX_IN_FLIGHT": "32",
        }
    )
    assert (settings.database_url, settings.secret_key) == ("postgresql://u@h/db", "k")
    assert settings.run_lease_seconds == 2.5
    assert settings.stripe_max_in_flight == 32


@pytest.mark.parametrize("value", ["0", "65", "many", "2.5"])
def test_an_in_flight_cap_outside_1_to_64_is_refused(tmp_path: Path, value: str) -> None:
    env = {"HEADWATER_HOME": str(tmp_path), "HEADWATER_STRIPE_MAX_IN_FLIGHT": value}
    with pytest.raises(InvalidInput) as info:
        settings_from_env(env)
    assert info.value.message == (
        f"HEADWATER_STRIPE_MAX_IN_FLIGHT: must be a whole number from 1 to 64; got {value!r}"
    )


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan"])
def test_a_lease_that_is_not_a_positive_number_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        settings_from_env({"HEADWATER_HOME": str(tmp_path), "HEADWATER_RUN_LEASE_SECONDS": value})
    assert info.value.message == (
        f"HEADWATER_RUN_LEASE_SECONDS: must be a positive number of seconds; got {value!r}"
    )


def test_webhook_limits_come_from_the_environment_and_bad_ones_say_which() -> None:
    base = {"HEADWATER_HOME": "/tmp/hw-env-test"}
    assert settings_from_env(base).webhook_rate == 50.0
    given = settings_from_env(
        {**base, "HEADWATER_WEBHOOK_RATE": "2.5", "HEADWATER_WEBHOOK_BURST": "9"}
    )
    assert (given.webhook_rate, given.webhook_burst) == (2.5, 9.0)
    for bad in ("0", "-1", "lots", "inf", "nan"):
        with pytest.raises(InvalidInput) as caught:
            settings_from_env({**base, "HEADWATER_WEBHOOK_RATE": bad})
        assert caught.value.location == "HEADWATER_WEBHOOK_RATE"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("foo", "not a database URL"),
        ("mysql://u:s3cret@h/db", "'mysql://u:***@h/db' for the metadata store: its driver"),
        ("nosuchdb://u:s3cret@h/db", "'nosuchdb://u:***@h/db' for the metadata store: unknown"),
        ("postgresql://u:s3cret@h:port/db", "not a database URL"),
    ],
)
def test_a_bad_database_url_is_one_error_line_naming_the_variable(
    home: Path, url: str, said: str
) -> None:
    for command in (["connections", "list"], ["pipelines", "list"]):
        result = CliRunner().invoke(cli, command, env={"HEADWATER_DATABASE_URL": url})
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: HEADWATER_DATABASE_URL: ")
        assert said in lines[0]
        assert "s3cret" not in result.output


def test_an_unreachable_database_names_the_variable_and_the_host(home: Path) -> None:
    """A PostgreSQL store that cannot be reached said only "metadata store ... is
    unavailable", not which setting to look at."""
    url = "postgresql://u:s3cret@127.0.0.1:1/db"  # port 1: nothing listens there
    result = CliRunner().invoke(cli, ["connections", "list"], env={"HEADWATER_DATABASE_URL": url})
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: HEADWATER_DATABASE_URL: ")
    assert "metadata store is unavailable" in lines[0]
    assert "host 127.0.0.1 port 1" in lines[0]
    assert "'postgresql://u:***@127.0.0.1:1/db'" in lines[0]
    assert "s3cret" not in result.output


def test_proxies_are_read_lower_case_first(tmp_path: Path) -> None:
    settings = settings_from_env(
        {
            "HEADWATER_HOME": str(tmp_path),
            "HTTPS_PROXY": "http://upper:1",
            "https_proxy": "http://lower:2",
            "HTTP_PROXY": "http://plain:3",
            "ALL_PROXY": "",
            "no_proxy": "localhost,.internal",
        }
    )
    assert settings.proxies == (
        ("http", "http://plain:3"),
        ("https", "http://lower:2"),
        ("no", "localhost,.internal"),
    )
    assert settings.proxy_for("https://api.stripe.com") == "http://lower:2"
    assert settings.proxy_for("https://stripe.internal") is None


def test_a_proxy_of_another_kind_is_refused_without_its_credentials(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        settings_from_env({"HEADWATER_HOME": str(tmp_path), "ALL_PROXY": "socks5://u:pw@h:1"})
    assert info.value.location == "ALL_PROXY"
    assert "http:// or https://" in str(info.value)
    assert "pw" not in str(info.value)
