"""Saving a pipeline tries it on live sample customers and warns, never refuses."""

from __future__ import annotations

from tests.services.conftest import connect, reload

from headwater.sandbox.testing import RunningSandbox, start_sandbox
from headwater.services.app import App
from headwater.services.connections import GLANCE_RETRIES
from headwater.services.pipelines import manage, preview, saving

# The audit's reproduction: 97% of customers fail validation (a name is no datetime).
BAD = {"kind": "mapping", "mapping": {"email": "email", "created_at": "name"}}
GOOD = {"kind": "mapping", "mapping": {"email": "email", "created_at": "created"}}


def test_a_definition_most_customers_fail_is_saved_with_a_warning(
    app: App, sandbox: RunningSandbox
) -> None:
    conn = connect(app, sandbox)
    saved = saving.save_new(app, conn.id, "bad", BAD)
    assert reload(app, saved.pipeline).transformation == BAD  # saved, not refused
    [warning] = saved.warnings
    assert f"of {preview.SAVE_SAMPLE} sampled customers fail (validate)" in warning
    failed = int(warning.split(" of ")[0])
    assert failed > preview.SAVE_SAMPLE // 2
    assert "First error: cus_" in warning
    assert "created_at" in warning


def test_a_definition_that_works_saves_without_warnings(app: App, sandbox: RunningSandbox) -> None:
    conn = connect(app, sandbox)
    assert saving.save_new(app, conn.id, "good", GOOD).warnings == []
    # A filter that keeps nobody in the sample is not a failing definition either.
    nobody = {
        "logical": "and",
        "conditions": [{"property": "email", "operator": "is", "values": ["x@example.invalid"]}],
    }
    assert saving.save_new(app, conn.id, "none", BAD, filter=nobody).warnings == []


def test_only_a_changed_definition_is_tried_again(app: App, sandbox: RunningSandbox) -> None:
    conn = connect(app, sandbox)
    pipeline = saving.save_new(app, conn.id, "p", GOOD).pipeline
    sandbox.reset_stats()
    renamed = saving.save_changes(app, pipeline.id, manage.PipelineChanges(name="q"))
    assert renamed.warnings == []
    assert sandbox.stats()["requests"] == 0  # nothing asked of Stripe for a new name
    changed = saving.save_changes(app, pipeline.id, manage.PipelineChanges(transformation=BAD))
    assert len(changed.warnings) == 1
    assert "sampled customers fail (validate)" in changed.warnings[0]
    assert reload(app, pipeline).needs_full
    assert sandbox.stats()["requests"] >= 1


def test_an_unreachable_source_gives_a_warning_not_a_failure(app: App) -> None:
    with start_sandbox(customers=10, seed=3) as sb:
        conn = connect(app, sb)
    saved = saving.save_new(app, conn.id, "offline", GOOD)
    assert reload(app, saved.pipeline).name == "offline"
    [warning] = saved.warnings
    assert warning.startswith("could not try the pipeline on sample customers: ")
    assert f"Could not reach Stripe at {sb.url}" in warning
    assert f"gave up after {GLANCE_RETRIES + 1} attempts" in warning  # no long retry budget


def test_code_that_raises_for_most_customers_is_saved_with_a_warning(
    app: App, sandbox: RunningSandbox
) -> None:
    conn = connect(app, sandbox)
    code = (
        "def transform(customer):\n"
        "    if customer['email'] and customer['email'] < 'y':\n"
        "        raise ValueError('no plan for ' + customer['email'])\n"
        "    return {'email': customer['email']}\n"
    )
    saved = saving.save_new(app, conn.id, "code", {"kind": "python", "source": code})
    assert reload(app, saved.pipeline).transformation["source"] == code
    [warning] = saved.warnings
    assert f"of {preview.SAVE_SAMPLE} sampled customers fail (transform)" in warning
    assert "ValueError: no plan for " in warning
