"""A real `headwater serve` with webhooks wired to a Stripe sandbox, for HTTP tests.

`Hooked` holds the serving process, the sandbox, an `App` on the same store (the test's
own view, for setup and for looking at runs), a connection with one enabled incremental
pipeline, and an API token of the default workspace.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from tests.conftest import PG_URL
from tests.serving import Service, start_serve

from headwater.adapters.store import runs
from headwater.adapters.store import webhooks as store
from headwater.kernel.entities import Connection, Pipeline
from headwater.kernel.settings import Settings
from headwater.sandbox.testing import RunningSandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.auth import tokens
from headwater.services.pipelines import manage, runner
from headwater.services.warehouse import set_url

MAPPING = {"kind": "mapping", "mapping": {"email": "email", "created_at": "created"}}


@dataclass
class Hooked:
    served: Service
    sandbox: RunningSandbox
    app: App
    connection: Connection
    pipeline: Pipeline
    token: str
    warehouse_schema: str | None = None

    def rows(self) -> dict[str, str | None]:
        """The pipeline's identities in the warehouse: source id -> email."""
        assert self.warehouse_schema is not None
        query = (
            f'SELECT _source_id, email FROM "{self.warehouse_schema}".identities '
            "WHERE _pipeline_id = %s"
        )
        with psycopg.connect(PG_URL) as conn:
            return dict(conn.execute(query, [self.pipeline.id]).fetchall())

    def settled(self) -> bool:
        """No delivery waiting to become a run, and no run queued or running."""
        engine = self.app.engine
        return (
            not store.pending_followups(engine) and runs.live_run(engine, self.pipeline.id) is None
        )

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.served.url}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )

    def receiver(self, connection_id: str | None = None) -> str:
        cid = connection_id or self.connection.id
        return f"{self.served.url}/api/v1/webhooks/stripe/{cid}"


@contextmanager
def hooked(
    home: Path,
    sandbox: RunningSandbox,
    *,
    workers: int = 2,
    env: Mapping[str, str] | None = None,
    schedule: str = "off",
    warehouse_schema: str | None = None,
    register: bool = False,
) -> Iterator[Hooked]:
    """Serve `home` with a connection to `sandbox` and an incremental pipeline.

    With a `warehouse_schema` (PostgreSQL), the pipeline's first (full) run lands there
    before the service starts; `register` registers the webhook through the API."""
    app = App.open(Settings.embedded(home))
    try:
        conn = connections.add_stripe(app, "sandbox", sandbox.secret_key, sandbox.url, 100.0)
        pipe = manage.create(
            app, conn.id, "customers", MAPPING, incremental=True, schedule=schedule
        )
        if warehouse_schema is not None:
            set_url(app, f"{PG_URL}?schema={warehouse_schema}")
            first = runner.run_pipeline(app, pipe.id)
            assert first.status == "succeeded", first.message
        raw, _ = tokens.create_token(app, "webhook tests")
        with start_serve(home, workers=workers, env=env) as served:
            running = Hooked(served, sandbox, app, conn, pipe, raw, warehouse_schema)
            if register:
                with running.api() as api:
                    path = f"/connections/{conn.id}/webhook"
                    answer = api.post(path, json={"url": served.url})
                assert answer.status_code == 200, answer.text
            yield running
    finally:
        app.close()
