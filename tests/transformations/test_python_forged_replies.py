"""User code that writes to the worker's reply pipe (fd 4) never gets a result
attached to another record.

The worker's replies go out on a descriptor user code can write to.  A frame forged
there was read as the batch's reply and the worker's real reply, left in the pipe,
was read as the next batch's: with the same number of records, one customer's
results were attached to another.  Now every request carries an id its reply must
echo, and bytes beside a reply fail the worker; either way the batch fails (its
records counted as failed, saying why) and the worker is replaced.
"""

from __future__ import annotations

import pytest

from headwater.adapters.transformations.contract import BatchFailed
from headwater.adapters.transformations.python import PythonTransformation, compile_python

SOURCE = """
import json, os, struct, sys, time

def forge(out, request_id=None):
    body = {"out": out, "errors": [], "logs": [], "dropped": 0, "cpu": 0}
    if request_id is not None:
        body["id"] = request_id
    data = json.dumps(body).encode()
    os.write(4, struct.pack(">I", len(data)) + data)

def transform(c):
    if c.get("attack") == "forge":  # a frame shaped like a reply, for the batch
        forge([{"email": "forged"}] * c["count"])
    elif c.get("attack") == "steal":  # the same, answering this very request
        frame, request_id = sys._getframe(1), None
        while frame is not None and request_id is None:
            request_id, frame = frame.f_locals.get("request_id"), frame.f_back
        forge([{"email": "forged"}] * c["count"], request_id)
        time.sleep(0.5)  # the real reply follows once the forged one was taken
    elif c.get("attack") == "junk":
        os.write(4, b"junk")
    return {"email": c["email"].lower()}
"""


def batch(
    name: str, count: int, attack: str | None = None, workers: int = 1
) -> list[dict[str, object]]:
    """`count` records; a forged reply holds as many results as one worker's share."""
    records: list[dict[str, object]] = [
        {"email": f"{name}{i}@X.COM", "count": count // workers} for i in range(count)
    ]
    if attack is not None:
        records[0]["attack"] = attack
    return records


def own(records: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{"email": str(r["email"]).lower()} for r in records]


def failed(t: PythonTransformation, records: list[dict[str, object]]) -> str:
    with pytest.raises(BatchFailed) as caught:
        t.transform(records)
    return caught.value.message


def test_a_forged_reply_fails_its_batch_and_the_worker() -> None:
    with compile_python(SOURCE, time_limit=3.0) as t:
        [pid] = t.pids()
        first = batch("one", 3, "forge")
        message = failed(t, first)
        # The forged frame is read alone (it does not answer this batch) or together
        # with the real reply behind it (bytes after a reply): the worker wrote both.
        assert message.startswith("Python transformation, batch 1: the worker")
        assert message.endswith("(something in it wrote to its reply pipe)")
        assert t.pids() == []  # replaced before the next batch
        second = batch("two", 3)
        assert t.transform(second) == own(second)  # not batch 1's results
        assert t.pids() != [pid]


def test_stray_bytes_fail_their_batch_and_the_worker() -> None:
    """Bytes that are no frame shift the real reply: whatever they are read as, the
    batch fails and the next one runs on a new worker."""
    with compile_python(SOURCE, time_limit=1.0) as t:
        failed(t, batch("one", 3, "junk"))
        assert t.pids() == []
        second = batch("two", 3)
        assert t.transform(second) == own(second)


def test_a_reply_forged_for_its_own_batch_never_reaches_the_next() -> None:
    """User code that finds the request's id answers for its own records (as its
    return values could); the worker's real reply, still to come, must not be taken
    for the next batch's."""
    with compile_python(SOURCE, time_limit=3.0) as t:
        first = batch("one", 3, "steal")
        assert t.transform(first) == [{"email": "forged"}] * 3
        second = batch("two", 3)
        message = failed(t, second)
        assert message.startswith("Python transformation, batch 2: ")
        assert "(something in it wrote to its reply pipe)" in message
        third = batch("three", 3)
        assert t.transform(third) == own(third)


def test_many_batches_after_a_forgery_keep_their_own_results() -> None:
    with compile_python(SOURCE, time_limit=3.0, workers=2) as t:
        for number in range(6):
            attack = "forge" if number % 2 == 0 else None
            records = batch(f"b{number}-", 130, attack, workers=2)
            try:
                got = t.transform(records)
            except BatchFailed:
                assert number % 2 == 0
                continue
            assert got == own(records)
