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
from tests.serving import Service, start_serve

from headwater.kernel.entities import Connection, Pipeline
from headwater.kernel.settings import Settings
from headwater.sandbox.testing import RunningSandbox
from headwater.services import connections
from headwater.services.app import App
from headwater.services.auth import tokens
from headwater.services.pipelines import manage

MAPPING = {"kind": "mapping", "mapping": {"email": "email", "created_at": "created"}}


@dataclass
class Hooked:
    served: Service
    sandbox: RunningSandbox
    app: App
    connection: Connection
    pipeline: Pipeline
    token: str

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
) -> Iterator[Hooked]:
    """Serve `home` with a connection to `sandbox` and an incremental pipeline."""
    app = App.open(Settings.embedded(home))
    try:
        conn = connections.add_stripe(app, "sandbox", sandbox.secret_key, sandbox.url, 100.0)
        pipe = manage.create(
            app, conn.id, "customers", MAPPING, incremental=True, schedule=schedule
        )
        raw, _ = tokens.create_token(app, "webhook tests")
        with start_serve(home, workers=workers, env=env) as served:
            yield Hooked(served, sandbox, app, conn, pipe, raw)
    finally:
        app.close()
