"""The ``headwater sandbox`` command: start-up banner and option validation."""

from __future__ import annotations

from click.testing import CliRunner

from headwater.sandbox.command import sandbox as sandbox_command


def test_banner_prints_url_and_keys(seeded) -> None:
    banner = "".join(seeded.output)
    assert f"listening on {seeded.url}" in banner
    assert "sk_test_sandbox" in banner
    assert "rk_test_customers_only  customers:read" in banner
    assert not seeded.url.endswith(":0")


def test_bad_key_option_is_rejected_without_echoing_it() -> None:
    result = CliRunner().invoke(sandbox_command, ["--key", "rk_test_secretvalue123=teleport"])
    assert result.exit_code == 2
    assert "unknown permission(s) teleport" in result.output
    assert "secretvalue123" not in result.output
    bad_prefix = CliRunner().invoke(sandbox_command, ["--key", "pk_test_x=*"])
    assert bad_prefix.exit_code == 2
    assert "must start with" in bad_prefix.output


def test_bad_knob_option_is_rejected() -> None:
    result = CliRunner().invoke(sandbox_command, ["--error-rate", "1.5"])
    assert result.exit_code == 2
    assert "error_rate" in result.output
