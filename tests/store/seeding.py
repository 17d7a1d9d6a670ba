"""One workspace, connection and pipeline (`pl_1`) in a fresh metadata store."""

from __future__ import annotations

from sqlalchemy import Engine

from headwater.adapters.store import objects
from headwater.kernel.entities import Connection, Pipeline, Workspace, utcnow
from headwater.kernel.model import DEFAULT_MODEL
from headwater.kernel.state import PipelineState


def seed(engine: Engine) -> Pipeline:
    now = utcnow()
    objects.add(engine, Workspace("ws", "default", DEFAULT_MODEL.as_list(), None, now))
    objects.add(
        engine,
        Connection(
            "conn_1",
            "ws",
            "stripe",
            "stripe",
            "http://x",
            20.0,
            "v1:x",
            "sk_test_…abcd",
            False,
            True,
            now,
        ),
    )
    return objects.add(
        engine,
        Pipeline(
            "pl_1",
            "ws",
            "conn_1",
            "p",
            "",
            True,
            "off",
            True,
            None,
            {"kind": "mapping", "mapping": {"email": "email"}},
            PipelineState(),
            True,
            now,
            now,
        ),
    )
