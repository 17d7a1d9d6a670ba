"""Reading a transformation worker's reply: untrusted text, checked before use.

User code runs in the worker and can reach whatever writes the reply (the JavaScript
glue object, Python's patched modules), so a reply is checked for shape and every
field converted defensively: anything malformed is `MalformedReply`, which the caller
turns into its batch's failure, never an exception of another kind that would end the
run.

Text that is not Unicode: JavaScript strings and Python ``str`` can hold a lone
surrogate (half of a character outside the Basic Multilingual Plane, e.g. an emoji cut
by ``substring``).  JSON writes it as a ``\\udXXX`` escape, which strict decoders
(orjson) refuse and a UTF-8 warehouse cannot store.  Such a reply is read by the
standard library instead; a record holding one is a per-record error saying so, and
log lines and error messages keep it visible as the escape text (NUL too: PostgreSQL
text cannot hold it).

Limits: the worker cuts log lines and refuses results that are too large, but user
code runs beside those checks and can reach them (JavaScript's glue object, the Python
worker's frames), so the reply is held to the same limits here, where user code
cannot reach.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from headwater.kernel.records import Outcome, TransformFailure

#: Longest error message kept per record (user code chooses what it throws).
MAX_MESSAGE = 2000
#: Longest captured log line kept (as the workers cut them).
MAX_LINE = 2000
NOT_UNICODE = (
    "the result holds text that is not valid Unicode (a lone surrogate: half of a "
    "character such as an emoji, e.g. cut by substring or slice)"
)


@dataclass(frozen=True)
class SizeLimit:
    """The largest JSON form of one record's result, measured as its worker does:
    UTF-8 ``bytes`` (Python) or ``characters`` (JavaScript's UTF-16 string length)."""

    most: int
    unit: str
    what: str  # what a result is called: "dict", "object"

    def excess(self, value: Any) -> str | None:
        """Why `value` (a result that serialises) is too large, or None."""
        body = orjson.dumps(value)
        size = len(body) if self.unit == "bytes" else len(body.decode().encode("utf-16-le")) // 2
        if size <= self.most:
            return None
        return (
            f"the returned {self.what} is too large ({size} {self.unit} of JSON, limit {self.most})"
        )


class MalformedReply(Exception):
    """The reply is not what the worker's own code writes (see the module docstring)."""


@dataclass(frozen=True)
class Reply:
    outcomes: list[Outcome]
    logs: list[str]
    dropped: int
    fields: dict[str, Any]


def decode(reply: bytes) -> tuple[Any, bool]:
    """The reply's JSON value, and whether it was read strictly (no lone surrogate
    anywhere in it: see the module docstring)."""
    try:
        return orjson.loads(reply), True
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(reply), False
    except (ValueError, RecursionError):
        raise MalformedReply("the worker sent an unreadable reply") from None


def text(value: Any) -> str:
    """`value` as text every store takes: a lone surrogate becomes its escape, and so
    does NUL (``\\u0000``), which PostgreSQL text cannot hold (a record error holding one
    made every progress update of its run fail, so none of its errors was stored)."""
    found = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return found.replace("\x00", "\\u0000") if "\x00" in found else found


def message(value: Any) -> str:
    found = text(value)
    return found if len(found) <= MAX_MESSAGE else found[:MAX_MESSAGE] + "…"


def read(reply: bytes, count: int, not_object: str, limit: SizeLimit) -> Reply:
    """Decode and check a batch reply (``out``, ``errors``, ``logs``, ``dropped``)
    for a batch of `count` records; `not_object` is the error of a result that is no
    object, `limit` the size a result may have."""
    data, strict = decode(reply)
    if not isinstance(data, dict):
        raise MalformedReply("the worker sent an unreadable reply")
    out, errors, logs = data.get("out"), data.get("errors"), data.get("logs")
    dropped = data.get("dropped") or 0
    if not (
        isinstance(out, list)
        and len(out) == count
        and isinstance(errors, list)
        and isinstance(logs, list)
        and isinstance(dropped, int)
    ):
        raise MalformedReply("the worker sent a malformed reply")
    # No result is longer than the whole reply: most replies need no measuring.
    sized = limit if len(reply) > limit.most else None
    outcomes: list[Outcome] = [_outcome(v, not_object, strict, sized) for v in out]
    for item in errors:
        if not (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], int)
            and 0 <= item[0] < count
        ):
            raise MalformedReply("the worker sent a malformed reply")
        outcomes[item[0]] = TransformFailure(message(item[1]))
    return Reply(outcomes, [_line(line) for line in logs], dropped, data)


def _line(value: Any) -> str:
    found = text(value)
    return found if len(found) <= MAX_LINE else found[:MAX_LINE] + "…"


def _outcome(value: Any, not_object: str, strict: bool, limit: SizeLimit | None) -> Outcome:
    if value is None:
        return None
    if not isinstance(value, dict):
        return TransformFailure(not_object)
    if not strict:  # the reply holds a lone surrogate somewhere: is it in this one?
        try:
            orjson.dumps(value)
        except TypeError as exc:
            return TransformFailure(NOT_UNICODE if "surrogate" in str(exc) else message(exc))
    if limit is not None and (excess := limit.excess(value)) is not None:
        return TransformFailure(excess)
    return value
