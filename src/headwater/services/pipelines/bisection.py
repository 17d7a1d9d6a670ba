"""A batch that broke a limit, retried in parts to find the record(s) that broke it.

A runtime fails a whole call when a limit trips (`BatchFailed`: time, memory, a worker
that died), so one customer that loops or exhausts memory would fail its page of the
source (up to 100 customers) with it.  `transform_apart` retries such a batch level by
level: its two halves, then the halves of each part that failed again, and so on down
to single records.  A part that passes gives its records' outcomes (from that call
only: no record is taken from two calls); a record that fails on its own broke the
limit and gets it as its error, as a `TransformFailure`.

Each failing retry may cost a whole time limit, so the retries are bounded:

- at most `MAX_FAILED_RETRIES` failing calls per batch: with 14, any page of 100 with up
  to two culprits is resolved exactly (7 levels below 100 each: 50, 25, 13, 7, 4, 2, 1);
- it gives up when every part of a level failed, from level `give_up_level` on (2, the
  quarters, by default): code that breaks the limit on every record costs 1 + 2 + 4
  calls per batch, not one per record;
- a failure that is not the records' doing (`records_at_fault` False: the runtime could
  not start) is not retried.

When it gives up, the records of the parts that failed are counted failed with the
limit, and their error says the part was not retried further.

A preview (and the trial on save) must answer while the user edits, and level by level
costs a time limit per failing level: 7 for code that loops on every one of 20 samples
(the 20, their halves, their quarters), 6 for one sample among 20 (down to it through
halves).  `transform_samples` tries each sample on its own instead, in order: a sample
that passes costs its own time, one that breaks the limit a time limit, and the tries
stop after `SAMPLE_FAILED_TRIES` of those.  The samples after that are counted apart
(`Apart.untried`): the trial on save does not count them as failing; nor
those left when the runtime itself fails midway (`Apart.cut_short`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from headwater.adapters.transformations.contract import BatchFailed, Transformation
from headwater.kernel.records import Outcome, Record, TransformFailure

#: Failing retries allowed per batch (each may cost a whole time limit).
MAX_FAILED_RETRIES = 14
#: The first level at which every part failing ends the retries (1: halves, 2: quarters).
GIVE_UP_LEVEL = 2
#: Samples of a preview tried on their own that may break a limit before the rest are not
#: tried: with 2, a preview answers within 3 time limits (the batch, then two samples
#: alone; 15 s with the 5 s limit) plus the time the samples that pass take; it names
#: one or two culprits among its samples (those after the second are not tried), and
#: of code that breaks the limit on every sample the first two, the others not tried.
SAMPLE_FAILED_TRIES = 2
_PLAYED_NO_PART = "not retried in parts: the records played no part"


@dataclass
class Apart:
    """The outcome of a batch, one per record in order, and how it went."""

    outcomes: list[Outcome]
    #: Some call passed: not every record of the batch broke a limit.
    passed: bool
    #: The last limit a call broke, if any.
    failure: BatchFailed | None = None
    calls: int = 1
    failed_calls: int = 0
    #: `transform_samples` only: how many records, the last ones, were not tried on
    #: their own (their outcome is the batch's limit, not known to be theirs), and,
    #: when the runtime itself cut the tries short, its failure (else the tries' cap).
    untried: int = 0
    cut_short: str = ""


@dataclass(frozen=True)
class _Part:
    start: int
    end: int
    failure: BatchFailed  # what the part (or the part it was cut from) broke


def transform_apart(
    transformation: Transformation,
    records: Sequence[Record],
    *,
    give_up_level: int = GIVE_UP_LEVEL,
    check: Callable[[], None] | None = None,
) -> Apart:
    """Transform `records`; on `BatchFailed`, retry in parts (see the module docstring).

    `check` is called before each retry: it raises to stop (a run asked to stop does
    not wait for the retries of a page; nothing of the page is recorded then)."""
    try:
        return Apart(transformation.transform(records), passed=True)
    except BatchFailed as exc:
        first = exc
    apart = Apart([], passed=False, failure=first, failed_calls=1)
    results: dict[int, Outcome] = {}
    failing = [_Part(0, len(records), first)]
    stopped: str | None = None  # why the retries ended, once they did
    level = 0
    while failing:
        parts: list[_Part] = []
        for part in failing:  # each part that failed: settled, or cut in two
            if not part.failure.records_at_fault:
                _fail(results, part, _PLAYED_NO_PART)
            elif part.end - part.start == 1:  # transformed on its own: the culprit
                results[part.start] = TransformFailure(_alone(part.failure))
            elif stopped:
                _fail(results, part, stopped)
            else:
                middle = part.start + (part.end - part.start + 1) // 2
                parts.append(_Part(part.start, middle, part.failure))
                parts.append(_Part(middle, part.end, part.failure))
        level += 1
        failing = []
        for index, part in enumerate(parts):
            if apart.failed_calls - 1 >= MAX_FAILED_RETRIES:  # the first call is no retry
                stopped = f"{MAX_FAILED_RETRIES} retries of its batch in smaller parts had failed"
                for untried in parts[index:]:
                    _fail(results, untried, stopped)
                break
            if check is not None:
                check()
            apart.calls += 1
            try:
                outcomes = transformation.transform(records[part.start : part.end])
            except BatchFailed as exc:
                apart.failed_calls += 1
                apart.failure = exc
                failing.append(_Part(part.start, part.end, exc))
                continue
            apart.passed = True
            results.update(zip(range(part.start, part.end), outcomes, strict=True))
        if failing and len(failing) == len(parts) and level >= give_up_level:
            stopped = stopped or "every part of its batch failed again"
    if len(results) != len(records):  # every record ends in exactly one place
        raise AssertionError(f"{len(records) - len(results)} records were left unresolved")
    apart.outcomes = [results[i] for i in range(len(records))]
    return apart


def transform_samples(
    transformation: Transformation,
    records: Sequence[Record],
    *,
    failed_tries: int = SAMPLE_FAILED_TRIES,
) -> Apart:
    """A preview's `records` as one batch; if that broke a limit, each on its own, in
    order, until `failed_tries` of them broke a limit too: the rest are not tried and
    fail with the batch's limit, saying so (see the module docstring)."""
    try:
        return Apart(transformation.transform(records), passed=True)
    except BatchFailed as exc:
        first = exc
    apart = Apart([], passed=False, failure=first, failed_calls=1)
    results: dict[int, Outcome] = {}
    if not first.records_at_fault:  # the runtime could not start: no sample is tried
        _fail(results, _Part(0, len(records), first), _PLAYED_NO_PART)
        apart.outcomes = [results[i] for i in range(len(records))]
        return apart
    if len(records) == 1:  # it was on its own
        apart.outcomes = [TransformFailure(_alone(first))]
        return apart
    for index, record in enumerate(records):
        if apart.failed_calls - 1 >= failed_tries:  # the first call is no try on its own
            untried = TransformFailure(_not_tried(first, len(records), failed_tries))
            results.update(dict.fromkeys(range(index, len(records)), untried))
            apart.untried = len(records) - index
            break
        apart.calls += 1
        try:
            [results[index]] = transformation.transform([record])
        except BatchFailed as exc:
            apart.failed_calls += 1
            apart.failure = exc
            if not exc.records_at_fault:  # this one and the rest: not known either way
                _fail(results, _Part(index, len(records), exc), _PLAYED_NO_PART)
                apart.untried = len(records) - index
                apart.cut_short = f"{exc.runtime}: {exc.reason}"
                break
            results[index] = TransformFailure(_alone(exc))
            continue
        apart.passed = True
    apart.outcomes = [results[i] for i in range(len(records))]
    return apart


def _not_tried(failure: BatchFailed, count: int, tries: int) -> str:
    return (
        f"{failure.runtime}: {failure.reason} (transforming the {count} samples together;"
        f" not tried on its own: the tries on their own stop after {tries} broke a limit)"
    )


def _alone(failure: BatchFailed) -> str:
    return f"{failure.runtime}: {failure.reason} (transforming this record on its own)"


def _fail(results: dict[int, Outcome], part: _Part, why: str) -> None:
    count = part.end - part.start
    which = "this record" if count == 1 else f"{count} records, this one among them"
    message = f"{part.failure.runtime}: {part.failure.reason} (transforming {which}; {why})"
    for index in range(part.start, part.end):
        results[index] = TransformFailure(message)
