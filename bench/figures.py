"""Printed ratios that never flatter their targets.

A ratio held against a floor (``>= 0.90``) is printed rounded down, one held against a
ceiling (``<= 0.25``) rounded up: ``0.8996`` of a budget prints as ``0.899``, not as a
``0.900`` beside "MISSED".  Values are taken by their shortest decimal spelling
(``repr``), so a figure such as ``0.9`` prints as it is, not a digit off.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal


def _rounded(value: float, digits: int, rounding: str) -> str:
    step = Decimal(1).scaleb(-digits)
    return str(Decimal(repr(value)).quantize(step, rounding=rounding))


def at_least(value: float, digits: int = 3) -> str:
    """`value` with `digits` decimals, rounded down (for a target it must reach)."""
    return _rounded(value, digits, ROUND_FLOOR)


def at_most(value: float, digits: int = 3) -> str:
    """`value` with `digits` decimals, rounded up (for a target it must stay under)."""
    return _rounded(value, digits, ROUND_CEILING)


def over_runs(ratios: list[float], target: float) -> str:
    """One line on a scenario's runs: their mean, range and how many met `target`
    (each run draws other latencies from the sandbox: one run is one draw)."""
    met = sum(1 for r in ratios if r >= target)
    mean = sum(ratios) / len(ratios)
    return (
        f"over {len(ratios)} runs: mean {at_least(mean)} ({at_least(min(ratios))} to "
        f"{at_least(max(ratios))}), target >= {target:.2f} met in {met} of {len(ratios)}"
    )
