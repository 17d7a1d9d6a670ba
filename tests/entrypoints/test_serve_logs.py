"""The service's log lines (`serve.logs`): secrets masked in every field."""

from __future__ import annotations

import json
import logging
import sys

from headwater.entrypoints.serve.logs import JsonLines

KEY = "sk_live_" + "A1b2C3d4E5f6G7h8I9j0K1l2"
TOKEN = "hw_" + "Z9y8X7w6V5u4T3s2R1q0P9o8"


def _line(record: logging.LogRecord) -> dict[str, str]:
    text = JsonLines().format(record)
    assert KEY not in text
    assert TOKEN not in text
    return dict(json.loads(text))


def test_a_traceback_with_a_key_in_it_is_logged_masked() -> None:
    """uvicorn logs an application's unexpected exception with its traceback (after
    the API's own handler logged it masked): the key in the exception's text reached
    the log whole."""
    try:
        raise RuntimeError(f"Stripe refused {KEY} for {TOKEN}")
    except RuntimeError:
        info = sys.exc_info()
    record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "boom", (), info)
    line = _line(record)
    assert "RuntimeError: Stripe refused sk_live_…K1l2" in line["exception"]
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", (), None)
    record.exc_text = f"Traceback ...\nRuntimeError: {KEY}"  # a child process's, formatted
    assert "sk_live_…K1l2" in _line(record)["exception"]


def test_a_message_with_a_key_in_its_arguments_is_logged_masked() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "key %s", (KEY,), None)
    assert _line(record)["message"] == "key sk_live_…K1l2"
