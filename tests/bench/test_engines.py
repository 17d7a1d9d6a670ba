"""The benches' ``--engines`` option: a name they do not know is refused before anything
runs.  `bench/import.py` took ``postgresql`` (the name `bench/identity.py` uses) for its
default warehouse and printed a DuckDB import under that name; `bench/identity.py`
skipped ``postgres`` (the name `bench/import.py` used) and printed nothing."""

from __future__ import annotations

import argparse

import pytest
from tests.bench.bench_files import load, run

engine_list = load("engines").engine_list


def test_both_spellings_of_postgresql_name_one_engine() -> None:
    assert engine_list("duckdb,postgres") == ["duckdb", "postgresql"]
    assert engine_list("postgresql") == ["postgresql"]
    assert engine_list(" DuckDB , postgresql ") == ["duckdb", "postgresql"]
    assert engine_list("postgres,postgresql") == ["postgresql"]


@pytest.mark.parametrize("text", ["mysql", "duckdb,sqlite", "", "duckdb,"])
def test_an_unknown_or_empty_engine_name_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="duckdb, postgresql"):
        engine_list(text)


#: Each bench with options that keep it short should it run anyway (as it did).
BENCHES = [
    ["import.py", "--customers", "1000", "--latency-customers", "0", "--pending", "0"],
    ["identity.py", "--identities", "1000"],
]


@pytest.mark.parametrize("script", BENCHES)
def test_the_benches_refuse_an_unknown_engine_before_running(script: list[str]) -> None:
    done = run(script[0], *script[1:], "--engines", "mysql")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "argument --engines: unknown engine 'mysql'" in done.stderr
    assert "duckdb, postgresql" in done.stderr
    assert done.stdout == ""  # no sandbox started, no import measured
