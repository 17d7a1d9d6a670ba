"""The rules every entry point shares: defaults and "at most one transformation"."""

from __future__ import annotations

import pytest
from tests.services.conftest import connect

from headwater.kernel.errors import InvalidInput
from headwater.sandbox.testing import RunningSandbox
from headwater.services.app import App
from headwater.services.pipelines import definition, manage, preview


def test_choose_transformation_takes_at_most_one_kind(app: App) -> None:
    model = app.model()
    assert manage.choose_transformation(model) is None
    assert manage.choose_transformation(model, suggested=True) == {
        "kind": "mapping",
        "mapping": definition.suggested_mapping(model),
    }
    assert manage.choose_transformation(model, mapping={"email": "email"}) == {
        "kind": "mapping",
        "mapping": {"email": "email"},
    }
    assert manage.choose_transformation(model, javascript="function transform(c) {}") == {
        "kind": "javascript",
        "source": "function transform(c) {}",
    }
    assert manage.choose_transformation(model, python="def transform(c): ...") == {
        "kind": "python",
        "source": "def transform(c): ...",
    }
    with pytest.raises(InvalidInput) as raised:
        manage.choose_transformation(model, mapping={}, python="x", suggested=True)
    assert raised.value.location == "transformation"
    assert raised.value.message.endswith("got mapping and suggested mapping and python")


def test_a_pipeline_created_without_options_gets_the_defaults(
    app: App, sandbox: RunningSandbox
) -> None:
    conn = connect(app, sandbox)
    pipeline = manage.create(app, conn.id, "defaults")
    suggested = definition.suggested_mapping(app.model())
    assert pipeline.transformation == {"kind": "mapping", "mapping": suggested}
    assert pipeline.schedule == manage.DEFAULT_SCHEDULE == "off"
    assert pipeline.incremental is manage.DEFAULT_INCREMENTAL is True
    assert pipeline.enabled is True
    chosen = manage.create(app, conn.id, "chosen", schedule="24h", incremental=False)
    assert (chosen.schedule, chosen.incremental) == ("24h", False)


def test_preview_of_an_unsaved_definition_defaults_to_the_suggested_mapping(
    app: App, sandbox: RunningSandbox
) -> None:
    conn = connect(app, sandbox)
    result = preview.preview(app, connection_id=conn.id, limit=5)
    assert len(result.samples) == 5
    suggested = definition.suggested_mapping(app.model())
    for sample in result.samples:
        assert sample.status == "ok", sample.error
        assert sample.returned is not None
        assert set(sample.returned) == set(suggested)
        assert sample.output is not None  # the row: every column of the model
        assert list(sample.output) == [c.name for c in app.model().columns]


def test_names_and_descriptions_have_the_same_limits_whatever_the_surface(
    app: App, sandbox: RunningSandbox
) -> None:
    """The API's schema alone limited names to 200 characters and descriptions to
    10,000: the CLI and the console saved 100,000, or an escape sequence in a name."""
    conn = connect(app, sandbox)
    for name in ("x" * 201, "evil\x1b[2Jname", "   "):
        with pytest.raises(InvalidInput) as caught:
            manage.create(app, conn.id, name)
        assert caught.value.location == "name"
    with pytest.raises(InvalidInput) as caught:
        manage.create(app, conn.id, "ok", description="d" * 10_001)
    assert caught.value.location == "description"
    made = manage.create(app, conn.id, "  ok  ", description="d" * 10_000)
    assert made.name == "ok"
    with pytest.raises(InvalidInput):
        manage.update(app, made.id, manage.PipelineChanges(name="y" * 201))
