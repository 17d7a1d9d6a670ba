"""Previews: a definition (saved or not) run on live sample customers, side by side.

Uses the same filter, transformation runtimes and conversion to the Customer Model's
types as a run (`landing.land`), but writes nothing: each sample's output is the row the
import would write, its error the one a run would record.  `sample_warning` is the same
trial, taken when a pipeline is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from headwater.adapters.connectors.stripe import StripeSource
from headwater.adapters.transformations.contract import Transformation
from headwater.adapters.warehouse.engines import refuses_nul
from headwater.adapters.warehouse.rejects import stage_values
from headwater.kernel.entities import Pipeline
from headwater.kernel.errors import HeadwaterError, InvalidInput
from headwater.kernel.model import CustomerModel
from headwater.kernel.records import IdentityRow, Record, Step
from headwater.services.app import App
from headwater.services.connections import get_connection, open_source
from headwater.services.pipelines import manage
from headwater.services.pipelines.bisection import (
    SAMPLE_FAILED_TRIES,
    Apart,
    transform_samples,
)
from headwater.services.pipelines.definition import (
    check_filter,
    check_transformation,
    compile_predicate,
    compile_transformation,
)
from headwater.services.pipelines.landing import Failed, land

MAX_PAGES = 10
#: Customers a pipeline's definition is tried on when it is saved.
SAVE_SAMPLE = 50


@dataclass
class Sample:
    """One customer: as the source gave it (`input`), what the transformation returned
    (`returned`, keyed by Customer Model path) and, when it lands, the row the import
    writes (`output`: every column, flattened, in the model's order, with the typed
    values the warehouse stores); else why not (`error`, at `step`)."""

    source_id: str
    input: Record
    status: str  # "ok" | "skipped" | "error"
    output: dict[str, Any] | None = None
    error: str | None = None
    step: str | None = None
    returned: dict[str, Any] | None = None


@dataclass
class Preview:
    samples: list[Sample] = field(default_factory=list)
    scanned: int = 0
    filtered_out: int = 0
    logs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "filtered_out": self.filtered_out,
            "logs": self.logs,
            "samples": [s.__dict__ for s in self.samples],
        }


#: The most sample customers a preview shows (the CLI's ``--limit``, the API's ``limit``).
MOST_SAMPLES = 100


def preview(
    app: App,
    *,
    pipeline_id: str | None = None,
    connection_id: str | None = None,
    transformation: dict[str, Any] | None = None,
    filter: dict[str, Any] | None = None,
    limit: int = 20,
) -> Preview:
    """Preview a saved pipeline, or an unsaved definition on a connection.

    Given a pipeline, `transformation` / `filter` override its own (to try a change
    before saving it).  The definition is validated exactly as on save.
    """
    if not 1 <= limit <= MOST_SAMPLES:
        raise InvalidInput(f"must be between 1 and {MOST_SAMPLES}", "limit")
    model = app.model()
    if pipeline_id:
        pipeline = manage.get(app, pipeline_id)
        if connection_id and connection_id != pipeline.connection_id:
            raise InvalidInput(
                f"the pipeline reads the connection {pipeline.connection_id}, not"
                f" {connection_id!r}: leave the connection out, or give that one",
                "connection_id",
            )
        connection_id = pipeline.connection_id
        transformation = transformation or pipeline.transformation
        filter = filter if filter is not None else pipeline.filter
    if not connection_id:
        raise InvalidInput("give a pipeline, or a connection and a transformation")
    spec = check_transformation(transformation or manage.default_transformation(model), model)
    keep = compile_predicate(check_filter(filter))
    result = Preview()
    with open_source(app, get_connection(app, connection_id)) as source:
        chosen = _choose(source, keep, limit, result)
    transform = compile_transformation(spec, model)
    try:
        result.samples, _apart = _run(transform, chosen, model, refuses_nul(app.warehouse_url()))
        result.logs = transform.logs()
    finally:
        transform.close()
    return result


def sample_warning(app: App, pipeline: Pipeline, size: int = SAVE_SAMPLE) -> str | None:
    """Try a saved pipeline's filter and transformation on up to `size` of the newest live
    customers; a warning (with the first error) when most of those the filter keeps fail
    (see `trial_warning`).

    Saving never depends on the trial: a source that cannot be reached (after one quick
    retry) or a runtime that cannot start gives a warning too, never an error.
    """
    try:
        samples, apart = _try_on_sample(app, pipeline, size)
    except HeadwaterError as exc:
        return f"could not try the pipeline on sample customers: {exc.message}"
    return trial_warning(samples, apart.untried, apart.cut_short) if apart else None


def trial_warning(samples: list[Sample], untried: int = 0, cut_short: str = "") -> str | None:
    """The trial's warning, when more of the samples whose outcome is known fail than
    pass (skipped ones pass: they would not be imported, by design).

    The last `untried` samples were not tried on their own: `transform_samples` stopped
    after `SAMPLE_FAILED_TRIES` broke a limit alone, or the runtime failed (`cut_short`,
    its failure).  They are not known to fail, so they count neither way, and the
    warning says how many there were and why.  A trial the runtime cut short says so
    even when most of those tried pass.  With every sample tried this is the rule it
    always was: more than half of them fail.
    """
    known = samples[: len(samples) - untried]
    failed = [s for s in known if s.status == "error"]
    tally = f"{len(known) - len(failed)} of the {len(known)} tried passed"
    why = f"the runtime failed ({cut_short})" if cut_short else ""
    if len(failed) * 2 <= len(known):
        if untried and cut_short:
            return (
                f"could not try the pipeline on {untried} of the {len(samples)} sampled"
                f" customers: {why}; {tally}"
            )
        return None
    first = failed[0]
    found = f"First error: {first.source_id}: {first.error}"
    if not untried:
        return (
            f"{len(failed)} of {len(samples)} sampled customers fail ({first.step}); they"
            f" would not be imported. {found}"
        )
    because = f": {why}" if cut_short else f" after {SAMPLE_FAILED_TRIES} broke a limit"
    return (
        f"{len(failed)} of the {len(samples)} sampled customers fail ({first.step}) and"
        f" would not be imported; {untried} were not tried on their own{because},"
        f" {tally}. {found}"
    )


def _try_on_sample(app: App, pipeline: Pipeline, size: int) -> tuple[list[Sample], Apart | None]:
    model = app.model()
    keep = compile_predicate(pipeline.filter)
    with open_source(app, get_connection(app, pipeline.connection_id), glance=True) as source:
        chosen = _choose(source, keep, size, Preview())
    if not chosen:
        return [], None
    transform = compile_transformation(pipeline.transformation, model)
    try:
        return _run(transform, chosen, model, refuses_nul(app.warehouse_url()))
    finally:
        transform.close()


def _choose(
    source: StripeSource, keep: Callable[[Record], bool], limit: int, counts: Preview
) -> list[Record]:
    """Up to `limit` of the newest customers that `keep` accepts; counts what it scanned."""
    chosen: list[Record] = []
    for page in source.read_newest(MAX_PAGES):
        for record in page:
            counts.scanned += 1
            if keep(record):
                chosen.append(record)
            else:
                counts.filtered_out += 1
            if len(chosen) == limit:
                return chosen
    return chosen


def _run(
    transform: Transformation,
    records: list[Record],
    model: CustomerModel,
    nul_forbidden: bool,
) -> tuple[list[Sample], Apart]:
    """The samples, and how they went (`Apart.untried`: how many, the last ones, were
    not tried on their own, and why)."""
    # A batch that breaks a runtime's limit is retried sample by sample, so only the
    # customer that broke it fails, with the error a run records for it; to answer
    # within a few time limits, only the first two that break it alone are tried: the
    # others show the batch's limit, saying they were not tried on their own.
    apart = transform_samples(transform, records)
    outcomes = apart.outcomes
    samples = []
    columns = [c.name for c in model.columns]
    rows: list[IdentityRow] = []
    for record, outcome in zip(records, outcomes, strict=True):
        sample = Sample(record["id"], record, "ok")
        if isinstance(outcome, dict):
            sample.returned = outcome
        landed = land(outcome, model.to_columns)
        if landed is None:
            sample.status = "skipped"
        elif isinstance(landed, Failed):
            sample.status, sample.error, sample.step = "error", landed.message, landed.step.value
        else:
            # The import writes every column: one the result leaves out is stored null.
            sample.output = {name: landed.get(name) for name in columns}
            rows.append(IdentityRow(sample.source_id, None, landed))
        samples.append(sample)
    # What the warehouse checks of each row it writes (text holding NUL where the engine
    # cannot store it): a row it would refuse is the run's write error for that customer.
    types = {c.name: c.type for c in model.columns}
    refused = dict(stage_values(rows, types, nul_forbidden).rejected)
    for sample in samples:
        if sample.source_id in refused:
            sample.status, sample.step = "error", Step.WRITE.value
            sample.error, sample.output = refused[sample.source_id], None
    return samples, apart
