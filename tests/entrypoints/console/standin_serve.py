"""A stand-in for ``headwater serve`` until its run workers land (issue 11): the real
root application (`create_http_app`, with the API and the console mounted) over HTTP,
plus one worker thread executing queued runs. Replace with `tests/serving.start_serve`
once ``headwater serve`` executes runs.

Run as ``python tests/console/standin_serve.py PORT`` with ``HEADWATER_HOME`` set; it
prints ``ready`` once it answers. Everything it does goes through the product's own
services (`runner.execute_run`), as the real workers do.
"""

from __future__ import annotations

import sys
import threading
import time

import uvicorn

from headwater.entrypoints.environment import settings_from_env
from headwater.entrypoints.serve.http import create_http_app
from headwater.kernel.entities import RunStatus
from headwater.kernel.errors import Conflict
from headwater.services.app import App
from headwater.services.pipelines import runner


def work(app: App, stop: threading.Event) -> None:
    while not stop.wait(0.2):
        for run in runner.list_runs(app, limit=20):
            if run.status == RunStatus.QUEUED:
                try:
                    runner.execute_run(app, run.id)
                except Conflict:  # cancelled or claimed meanwhile
                    continue


def main() -> None:
    app = App.open(settings_from_env())
    root = create_http_app(app)
    stop = threading.Event()
    threading.Thread(target=work, args=(app, stop), daemon=True).start()
    server = uvicorn.Server(
        uvicorn.Config(root, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    print("ready", flush=True)
    try:
        while server.should_exit is False:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    stop.set()


if __name__ == "__main__":
    main()
