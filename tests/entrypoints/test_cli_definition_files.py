"""Mapping, filter and code files given to the CLI: empty, broken and non-UTF-8 files
are refused naming the option and the file."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from headwater.entrypoints.cli.commands import cli


def add_with(option: str, path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        ["pipelines", "add", "--connection", "conn_missing", "--name", "P", option, str(path)],
        catch_exceptions=False,
    )
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("option", ["--mapping", "--filter"])
@pytest.mark.parametrize("content", ["", "  \n\t\n"])
def test_an_empty_file_is_called_empty(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, content: str
) -> None:
    """Issue 17 §8: an empty file said "not valid JSON"."""
    monkeypatch.chdir(tmp_path)  # a short path: the terminal wraps long ones
    Path("d.json").write_text(content)
    code, output = add_with(option, Path("d.json"))
    assert code == 1
    assert f"{option}: d.json: the file is empty" in output
    assert "not valid JSON" not in output


def test_a_broken_file_names_the_line(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("m.json").write_text('{\n  "email": "email",\n}')
    code, output = add_with("--mapping", Path("m.json"))
    assert code == 1
    assert "--mapping: m.json: not valid JSON (" in output
    assert "at line 3)" in output


@pytest.mark.parametrize("option", ["--mapping", "--filter"])
def test_a_file_nested_too_deep_is_refused_without_a_traceback(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    """Thousands of nested brackets exhausted the JSON parser's stack: a traceback."""
    monkeypatch.chdir(tmp_path)
    Path("d.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    code, output = add_with(option, Path("d.json"))
    assert code == 1
    assert f"{option}: d.json: nested too deeply to read" in output
    validated = CliRunner().invoke(
        cli, ["pipelines", "validate", option, "d.json"], catch_exceptions=False
    )
    assert validated.exit_code == 1
    assert "nested too deeply to read" in validated.output


@pytest.mark.parametrize(
    ("option", "name"),
    [
        ("--mapping", "d.json"),
        ("--filter", "d.json"),
        ("--javascript", "t.js"),
        ("--python", "t.py"),
    ],
)
def test_a_file_that_is_not_utf8_names_the_file_and_the_byte(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path(name).write_bytes(b'{"name":\n "caf\xe9"}')  # Latin-1, not UTF-8
    said = f"{option}: {name}: not UTF-8 text: byte 0xe9 at position 14 (line 2)"
    code, output = add_with(option, Path(name))
    assert code == 1
    assert said in output
    validated = CliRunner().invoke(
        cli, ["pipelines", "validate", option, name], catch_exceptions=False
    )
    assert validated.exit_code == 1
    assert said in " ".join(validated.output.split())


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["identity", "set", "--identifiers", "email", "--blocked"], "--blocked"),
        (["connections", "add", "stripe", "--name", "S", "--api-key-file"], "--api-key-file"),
        (["connections", "rotate-key", "conn_missing", "--api-key-file"], "--api-key-file"),
    ],
)
def test_a_blocked_or_key_file_that_is_not_utf8_names_the_file_and_the_byte(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], option: str
) -> None:
    """These files were read with a bare decode: "'utf-8' codec can't decode ..." (or
    the locale's encoding), naming neither the option nor the file."""
    monkeypatch.chdir(tmp_path)
    Path("f.txt").write_bytes(b'{"email":\n ["caf\xe9"]}')
    result = CliRunner().invoke(cli, [*command, "f.txt"], catch_exceptions=False)
    assert result.exit_code == 1
    said = f"{option}: f.txt: not UTF-8 text: byte 0xe9 at position 16 (line 2)"
    assert said in " ".join(result.output.split())


def test_validate_shows_a_code_errors_line_without_a_column(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A code error has a line and no column: it read '(line 2, column None)'."""
    monkeypatch.chdir(tmp_path)
    Path("t.py").write_text("def transform(c):\n    return {\n")
    validated = CliRunner().invoke(
        cli, ["pipelines", "validate", "--python", "t.py"], catch_exceptions=False
    )
    assert validated.exit_code == 1
    assert "transformation (line 2): SyntaxError: '{' was never closed" in validated.output
    assert "None" not in validated.output


def _limited(*args: str, stdin: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a process allowed 1 GiB of memory (so a file read whole cannot take
    the machine's)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    with (stdin or Path("/dev/null")).open("rb") as given:
        return _run_limited(list(args), given, limit)


def _run_limited(args: list[str], stdin: Any, limit: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from headwater.entrypoints.cli import main; main()", *args],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=limit,  # only sets a limit; no threads in this test
    )


@pytest.mark.parametrize(
    "args",
    [
        ["connections", "add", "stripe", "--name", "x", "--api-key-file"],
        ["pipelines", "add", "--connection", "conn_x", "--name", "P", "--mapping"],
        ["pipelines", "add", "--connection", "conn_x", "--name", "P", "--javascript"],
    ],
)
def test_an_endless_or_huge_file_is_refused_not_read_whole(home: Path, args: list[str]) -> None:
    """A file that never ends (/dev/zero, given by mistake) was read whole: memory ran
    out and the CLI printed a MemoryError traceback (or the machine swapped first)."""
    done = _limited(*args, "/dev/zero")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "/dev/zero: larger than 8 MiB" in done.stderr, done.stderr
    assert f"{args[-1]}: " in done.stderr, done.stderr


def test_a_key_on_stdin_that_never_ends_is_refused(home: Path) -> None:
    """The key read from stdin (no --api-key-env or --api-key-file, not a terminal) was
    read up to a newline: from an endless stream without one, until memory ran out."""
    done = _limited("connections", "add", "stripe", "--name", "x", stdin=Path("/dev/zero"))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "api_key: the key read from stdin is longer than 4096 characters" in done.stderr
