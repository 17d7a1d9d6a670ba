"""The benches' printed ratios never flatter a target: `bench/import.py` printed the
concurrency-limit scenario's 0.8996 of the budget as "0.900" beside "target >= 0.90"
and "MISSED" (4 December 2026).  A ratio checked against a floor is printed rounded
down, one checked against a ceiling rounded up, so a printed figure meets its target
exactly when the measurement did."""

from __future__ import annotations

import pytest
from tests.bench.bench_files import load, run

_FIGURES = load("figures")
at_least, at_most = _FIGURES.at_least, _FIGURES.at_most


def test_a_ratio_short_of_its_floor_is_not_printed_as_meeting_it() -> None:
    assert f"{0.8996:.3f}" == "0.900"  # what the bench printed
    assert at_least(0.8996) == "0.899"
    assert at_least(0.8996, 2) == "0.89"
    assert float(at_least(0.8996)) < 0.9


def test_a_ratio_over_its_ceiling_is_not_printed_as_meeting_it() -> None:
    assert f"{0.2504:.3f}" == "0.250"
    assert at_most(0.2504) == "0.251"
    assert float(at_most(0.2504)) > 0.25
    assert at_most(0.0201, 2) == "0.03"


@pytest.mark.parametrize("value", [0.0, 0.25, 0.9, 1.0, 0.941, 2.5, 0.0124])
def test_exact_figures_print_as_they_are(value: float) -> None:
    # Binary fractions (0.9 is 0.9000000000000000222...) must not move a digit.
    assert float(at_least(value, 4)) == pytest.approx(value)
    assert float(at_most(value, 4)) == pytest.approx(value)
    assert at_least(0.9) == "0.900"
    assert at_most(0.25) == "0.250"


@pytest.mark.parametrize("value", [0.8996, 0.2504, 0.3333333, 0.95, 0.12345])
def test_the_two_bounds_are_at_most_one_last_digit_apart(value: float) -> None:
    low, high = float(at_least(value)), float(at_most(value))
    assert low <= value <= high
    assert high - low <= 0.001 + 1e-12


def test_runs_of_a_scenario_are_summed_up_without_flattering_them() -> None:
    line = _FIGURES.over_runs([0.907, 0.909, 0.916, 0.919, 0.919, 0.928], 0.92)
    assert line == "over 6 runs: mean 0.916 (0.907 to 0.928), target >= 0.92 met in 1 of 6"
    assert "met in 0 of 2" in _FIGURES.over_runs([0.8996, 0.8999], 0.9)
    assert "mean 0.899" in _FIGURES.over_runs([0.8996, 0.8999], 0.9)


@pytest.mark.parametrize("count", ["0", "-2", "three"])
def test_a_repeat_of_no_runs_is_refused_before_anything_runs(count: str) -> None:
    done = run("import.py", "--customers", "1000", "--repeat", count)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "argument --repeat: must be a whole number of runs, 1 or more" in done.stderr
    assert done.stdout == ""  # no sandbox started, no import measured
