"""Structured logs for the service: one JSON object per line on standard error, secrets
masked (`kernel.errors.redact`: Stripe keys, webhook secrets, tokens), with
the run id and pipeline id on every line logged while a run executes (the lines of a
run's Stripe reading process too: it hands its records to the run's process, see
`adapters.connectors.stripe.offload`)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from headwater.kernel.errors import redact
from headwater.services.runs.logcontext import RunFields


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            "run_id": getattr(record, "run_id", None),
            "pipeline_id": getattr(record, "pipeline_id", None),
            "thread": record.threadName,
            "pid": record.process,  # a child's (the Stripe reading process) for its lines
        }
        # Tracebacks too: an exception's text may hold a key (uvicorn logs the API's
        # unexpected errors whole, after the API's handler logged them masked).
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:  # formatted already (a child process's record)
            line["exception"] = redact(record.exc_text)
        return json.dumps(line, ensure_ascii=False)


def log_json_lines(level: int = logging.INFO) -> None:
    """Send every log record, at `level` and above, to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    handler.addFilter(RunFields())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_http_clients()


def quiet_http_clients() -> None:
    """httpx logs every request at INFO, and urllib3 (the Stripe client's wire) warns
    whenever more requests were under way than connections kept: noise, not news
    (retries and failures are logged by the Stripe client itself)."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)
