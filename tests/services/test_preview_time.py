"""A preview whose code breaks its time limit answers within a few time limits.

A batch that breaks a limit is retried in parts so that only the customer that broke it
fails; a preview (and the trial on save) retried its samples as a run retries a page,
level by level, a time limit per failing level: code that looped on every one of 20
samples took 7 (the 20, their halves, their quarters: 36 s with the 5 s limit), code that
looped on one sample 6 (31 s; the trial on save of 50 samples 7: 36 s), far too long for
the editor's live preview.  It now tries the samples on their own
(`bisection.transform_samples`).  Bounds are in time limits plus, measured in the same
test, a preview of code that passes (reading the samples, starting the worker).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from inspect import signature
from typing import Any

import pytest
import stripe
from tests.services.conftest import connect

from headwater.adapters.transformations.contract import BatchFailed
from headwater.adapters.transformations.javascript import compile_javascript
from headwater.adapters.transformations.python import compile_python
from headwater.kernel.records import Outcome, Record, TransformFailure
from headwater.sandbox.testing import start_sandbox
from headwater.services.app import App
from headwater.services.pipelines import preview, saving
from headwater.services.pipelines.bisection import SAMPLE_FAILED_TRIES, transform_samples

#: The time limit a preview's code runs under (the runtimes' default: both the same).
TIME_LIMIT: float = signature(compile_python).parameters["time_limit"].default
assert signature(compile_javascript).parameters["time_limit"].default == TIME_LIMIT

CODE = {
    "python": {
        "fine": 'def transform(c):\n    return {"email": c["email"]}\n',
        "every": "def transform(c):\n    while True:\n        pass\n",
        "one": (
            "def transform(c):\n"
            '    while c["metadata"].get("trap") == "loop":\n'
            "        pass\n"
            '    return {"email": c["email"]}\n'
        ),
    },
    "javascript": {
        "fine": "function transform(c) { return {email: c.email}; }",
        "every": "function transform(c) { while (true) {} }",
        "one": (
            "function transform(c) {\n"
            '  while (c.metadata.trap === "loop") {}\n'
            "  return {email: c.email};\n"
            "}"
        ),
    },
}
EXCEEDED = f"time limit of {TIME_LIMIT:g} s exceeded"


def timed_preview(
    app: App, connection_id: str, kind: str, code: str
) -> tuple[float, list[dict[str, Any]]]:
    spec = {"kind": kind, "source": CODE[kind][code]}
    started = time.monotonic()
    shown = preview.preview(app, connection_id=connection_id, transformation=spec)
    return time.monotonic() - started, shown.as_dict()["samples"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(CODE))
def test_code_that_loops_on_every_sample_answers_within_a_few_time_limits(
    app: App, kind: str
) -> None:
    with start_sandbox(customers=30, seed=5) as sb:
        connection_id = connect(app, sb).id
        startup, fine = timed_preview(app, connection_id, kind, "fine")
        took, samples = timed_preview(app, connection_id, kind, "every")
    assert {s["status"] for s in fine} == {"ok"}
    assert took < 4 * TIME_LIMIT + startup, (took, startup)
    assert len(samples) == 20  # the default sample size, every one answered
    assert {(s["status"], s["step"]) for s in samples} == {("error", "transform")}
    assert all(EXCEEDED in s["error"] for s in samples)
    # The customers the code was tried on alone are named; the rest say they were not.
    alone = [s for s in samples if s["error"].endswith("(transforming this record on its own)")]
    assert 1 <= len(alone) <= 2
    rest = [s for s in samples if s not in alone]
    assert rest
    assert all("not tried on its own" in s["error"] for s in rest)


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(CODE))
def test_code_that_loops_on_one_sample_names_it_within_a_few_time_limits(
    app: App, kind: str
) -> None:
    with start_sandbox(customers=30, seed=6) as sb:
        client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
        trap = client.v1.customers.create({"email": "t@x.io", "metadata": {"trap": "loop"}})
        connection_id = connect(app, sb).id
        startup, _fine = timed_preview(app, connection_id, kind, "fine")
        took, samples = timed_preview(app, connection_id, kind, "one")
        # The trial on save, the same retries on its 31 samples: no warning for one.
        started = time.monotonic()
        spec = {"kind": kind, "source": CODE[kind]["one"]}
        saved = saving.save_new(app, connection_id, "trapped", spec)
        trial = time.monotonic() - started
    assert took < 3 * TIME_LIMIT + startup, (took, startup)
    assert trial < 3 * TIME_LIMIT + startup, (trial, startup)
    assert saved.warnings == []
    by_id = {s["source_id"]: s for s in samples}
    assert len(by_id) == 20
    failed = by_id.pop(trap.id)
    assert (failed["status"], failed["step"]) == ("error", "transform")
    assert failed["error"].endswith(f"{EXCEEDED} (transforming this record on its own)")
    assert {s["status"] for s in by_id.values()} == {"ok"}
    assert all(s["output"]["email"] == s["input"]["email"] for s in by_id.values())


class Culprits:
    """A contract-shaped stand-in: a call fails with the time limit when one of its
    records is a culprit (every record with `every`); it counts the calls' sizes."""

    def __init__(self, culprits: set[int], *, every: bool = False, at_fault: bool = True):
        self.culprits, self.every, self.at_fault = culprits, every, at_fault
        self.calls: list[int] = []

    def transform(self, records: Sequence[Record]) -> list[Outcome]:
        self.calls.append(len(records))
        if self.every or any(r["n"] in self.culprits for r in records):
            raise BatchFailed(EXCEEDED, runtime="R", records_at_fault=self.at_fault)
        return [{"email": f"{r['n']}@x.io"} for r in records]

    def logs(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


def errors(outcomes: list[Outcome]) -> list[str | None]:
    return [o.message if isinstance(o, TransformFailure) else None for o in outcomes]


ALONE = f"R: {EXCEEDED} (transforming this record on its own)"
UNTRIED = (
    f"R: {EXCEEDED} (transforming the 20 samples together; not tried on its own:"
    f" the tries on their own stop after {SAMPLE_FAILED_TRIES} broke a limit)"
)
SAMPLES = [{"n": n} for n in range(20)]


@pytest.mark.parametrize(
    ("culprits", "calls", "expected"),
    [
        ({7}, [20] + [1] * 20, [None] * 7 + [ALONE] + [None] * 12),
        # Past the second culprit nothing is tried: a third would cost a time limit more.
        ({3, 11}, [20] + [1] * 12, [None] * 3 + [ALONE] + [None] * 7 + [ALONE] + [UNTRIED] * 8),
        ({0, 2, 5}, [20, 1, 1, 1], [ALONE, None, ALONE] + [UNTRIED] * 17),
    ],
)
def test_samples_are_tried_on_their_own_until_two_break_the_limit(
    culprits: set[int], calls: list[int], expected: list[str | None]
) -> None:
    stand_in = Culprits(culprits)
    apart = transform_samples(stand_in, SAMPLES)
    assert stand_in.calls == calls
    assert errors(apart.outcomes) == expected
    assert apart.failed_calls == 1 + min(len(culprits), SAMPLE_FAILED_TRIES)


def test_code_that_breaks_the_limit_on_every_sample_costs_three_calls() -> None:
    stand_in = Culprits(set(), every=True)
    apart = transform_samples(stand_in, SAMPLES)
    assert stand_in.calls == [20, 1, 1]
    assert errors(apart.outcomes) == [ALONE, ALONE] + [UNTRIED] * 18
    assert not apart.passed


def test_a_runtime_that_cannot_start_is_not_tried_sample_by_sample() -> None:
    stand_in = Culprits(set(), every=True, at_fault=False)
    apart = transform_samples(stand_in, SAMPLES)
    assert stand_in.calls == [20]
    assert set(errors(apart.outcomes)) == {
        f"R: {EXCEEDED} (transforming 20 records, this one among them;"
        " not retried in parts: the records played no part)"
    }


def test_one_sample_that_breaks_the_limit_is_tried_once() -> None:
    stand_in = Culprits({0})
    apart = transform_samples(stand_in, SAMPLES[:1])
    assert stand_in.calls == [1]
    assert errors(apart.outcomes) == [ALONE]


#: Code that loops on the customers marked ``trap: loop`` only.
TRAPPED = {kind: CODE[kind]["one"] for kind in CODE}
SHORT = 0.5  # a time limit short enough for the trial below to stay quick


def short_limits(spec: dict[str, Any], model: object) -> Any:
    if spec["kind"] == "javascript":
        return compile_javascript(spec["source"], time_limit=SHORT)
    return compile_python(spec["source"], time_limit=SHORT)


@pytest.mark.parametrize("kind", list(CODE))
def test_the_trial_on_save_counts_untried_samples_as_not_tried(
    app: App, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Code that loops on the first two of 20 samples: the tries on their own stop there,
    and the 18 others are not known to fail.  The warning said "20 of 20 sampled
    customers fail"; it now says 2 fail and 18 were not tried."""
    monkeypatch.setattr(preview, "compile_transformation", short_limits)
    with start_sandbox(customers=18, seed=7) as sb:
        client = stripe.StripeClient(sb.secret_key, base_addresses={"api": sb.url})
        traps = [  # created last: the newest, so the first two samples
            client.v1.customers.create({"email": f"t{n}@x.io", "metadata": {"trap": "loop"}})
            for n in range(2)
        ]
        connection_id = connect(app, sb).id
        started = time.monotonic()
        saved = saving.save_new(
            app, connection_id, "trapped", {"kind": kind, "source": TRAPPED[kind]}
        )
        took = time.monotonic() - started
    [warning] = saved.warnings
    assert warning.startswith("2 of the 20 sampled customers fail (transform)"), warning
    assert f"18 were not tried on their own after {SAMPLE_FAILED_TRIES} broke a limit" in warning
    assert "20 of 20" not in warning
    assert f"First error: {traps[-1].id}: " in warning  # the newest, tried first
    assert f"time limit of {SHORT:g} s exceeded (transforming this record on its own)" in warning
    assert took < 10 * SHORT + 5, took


def tried(culprits: set[int]) -> tuple[list[preview.Sample], int]:
    """The 20 samples as the trial sees them when the samples `culprits` break the limit
    alone (every other sample tried passes)."""
    apart = transform_samples(Culprits(culprits), SAMPLES)
    samples = [
        preview.Sample(f"cus_{n}", SAMPLES[n], "ok")
        if message is None
        else preview.Sample(f"cus_{n}", SAMPLES[n], "error", error=message, step="transform")
        for n, message in enumerate(errors(apart.outcomes))
    ]
    return samples, apart.untried


@pytest.mark.parametrize(
    ("culprits", "untried", "warned"),
    [
        (
            {0, 1},
            18,
            "2 of the 20 sampled customers fail (transform) and would not be imported;"
            " 18 were not tried on their own after 2 broke a limit, 0 of the 2 tried passed."
            f" First error: cus_0: {ALONE}",
        ),
        (
            {0, 2},
            17,
            "2 of the 20 sampled customers fail (transform) and would not be imported;"
            " 17 were not tried on their own after 2 broke a limit, 1 of the 3 tried passed."
            f" First error: cus_0: {ALONE}",
        ),
        ({0, 3}, 16, None),  # as many known to pass as known to fail: not most
        ({3, 11}, 8, None),  # 9 tried passed
        ({7}, 0, None),
    ],
)
def test_the_trial_warns_only_when_most_samples_tried_fail(
    culprits: set[int], untried: int, warned: str | None
) -> None:
    samples, counted = tried(culprits)
    assert counted == untried
    assert preview.trial_warning(samples, counted) == warned


def test_with_every_sample_tried_the_warning_is_as_before() -> None:
    fails = [
        preview.Sample(f"cus_{n}", {}, "error", error="bad", step="validate") for n in range(11)
    ]
    passes = [preview.Sample(f"cus_{n}", {}, "ok") for n in range(11, 20)]
    assert preview.trial_warning(fails + passes) == (
        "11 of 20 sampled customers fail (validate); they would not be imported."
        " First error: cus_0: bad"
    )
    assert preview.trial_warning(fails[:10] + passes + passes[:1]) is None  # 10 of 20


class DiesAt(Culprits):
    """`Culprits` whose runtime cannot start again from call `dies_at` (1-based) on."""

    def __init__(self, culprits: set[int], dies_at: int) -> None:
        super().__init__(culprits)
        self.dies_at = dies_at

    def transform(self, records: Sequence[Record]) -> list[Outcome]:
        if len(self.calls) + 1 >= self.dies_at:
            self.calls.append(len(records))
            raise BatchFailed("could not start", runtime="R", records_at_fault=False)
        return super().transform(records)


def test_samples_left_when_the_runtime_fails_midway_are_not_counted_as_failing() -> None:
    """Sample 3 breaks the limit alone, 0-2 and 4 pass, then the runtime cannot start
    again: the 15 samples left were never tried, yet the trial counted them as failing
    and warned "16 of 20 sampled customers fail".  They are now counted apart, and the
    warning says the trial was cut short, and why."""
    apart = transform_samples(DiesAt({3}, dies_at=7), SAMPLES)
    assert apart.untried == 15
    assert errors(apart.outcomes)[:5] == [None, None, None, ALONE, None]
    samples = [
        preview.Sample(f"cus_{n}", SAMPLES[n], "ok")
        if message is None
        else preview.Sample(f"cus_{n}", SAMPLES[n], "error", error=message, step="transform")
        for n, message in enumerate(errors(apart.outcomes))
    ]
    assert preview.trial_warning(samples, apart.untried, apart.cut_short) == (
        "could not try the pipeline on 15 of the 20 sampled customers: the runtime failed"
        " (R: could not start); 4 of the 5 tried passed"
    )
    # When most of those tried fail, that is the warning, with the same reason.
    apart = transform_samples(DiesAt({0}, dies_at=3), SAMPLES)
    assert apart.untried == 19
    samples = [preview.Sample("cus_0", {}, "error", error="bad", step="transform")] + [
        preview.Sample(f"cus_{n}", {}, "error", error="x", step="transform") for n in range(1, 20)
    ]
    assert preview.trial_warning(samples, apart.untried, apart.cut_short) == (
        "1 of the 20 sampled customers fail (transform) and would not be imported;"
        " 19 were not tried on their own: the runtime failed (R: could not start),"
        " 0 of the 1 tried passed. First error: cus_0: bad"
    )
