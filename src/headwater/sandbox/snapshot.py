"""``--state FILE``: the sandbox's data saved as tab-separated lines of JSON.

Line kinds: ``H`` header (clock offset, sequence, where the id generators have got
to), ``C key id json`` customer,
``D key id`` deleted customer, ``E key id type json`` event, ``W json`` webhook endpoint.
Customers' JSON is written as stored, so loading needs no re-rendering.  Format 1 files
(whose ``C`` lines also carried the email, now read from the JSON) still load, and so
do files whose header has no ``ids``: their run's ids came from the start of the seed's
sequences, so the loaded sandbox draws from sequences of its own instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from headwater.sandbox.events import Event
from headwater.sandbox.ids import IdFactory
from headwater.sandbox.webhooks import Endpoint

if TYPE_CHECKING:
    from headwater.sandbox.service import Sandbox

_FORMAT = 2
_READABLE = (1, 2)


def _id_factories(sandbox: Sandbox) -> dict[str, IdFactory]:
    return {"api": sandbox.ids, "webhooks": sandbox.webhooks.ids}


# What a damaged line can raise while it is read (a wrong type where JSON held another,
# a missing field, a number out of range); all of them mean "unreadable".
_DAMAGED = (ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError)


class StateFileError(Exception):
    """The ``--state`` file cannot be read or written; the message names it (and the
    line, for a damaged one)."""


def save(sandbox: Sandbox, path: str) -> None:
    """Write atomically (temp file + rename), so a crash never leaves half a snapshot."""
    try:
        _write(sandbox, Path(path))
    except OSError as exc:
        raise StateFileError(f"{path}: cannot save the sandbox's state: {_reason(exc)}") from None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _write(sandbox: Sandbox, target: Path) -> None:
    tmp = target.with_name(target.name + ".tmp")
    header = {
        "format": _FORMAT,
        "clock_offset": sandbox.clock.offset,
        "seq": sandbox.customers.seq,
        "ids": {name: ids.position() for name, ids in _id_factories(sandbox).items()},
    }
    with open(tmp, "wb") as out:
        out.write(b"H\t" + orjson.dumps(header) + b"\n")
        for key, customer_id, blob in sandbox.customers.items():
            out.write(b"C\t%d\t%s\t%s\n" % (key, customer_id.encode(), blob))
        for customer_id, key in sandbox.customers.deleted.items():
            out.write(b"D\t%d\t%s\n" % (key, customer_id.encode()))
        for event in sandbox.events:
            out.write(
                b"E\t%d\t%s\t%s\t%s\n"
                % (event.key, event.id.encode(), event.type.encode(), event.blob)
            )
        for endpoint in sandbox.webhooks.endpoints.values():
            data = {**endpoint.public(with_secret=True), "deliveries": endpoint.deliveries}
            out.write(b"W\t" + orjson.dumps(data) + b"\n")
    tmp.replace(target)


def load(sandbox: Sandbox, path: str) -> bool:
    """Load `path` into an empty sandbox; False when the file does not exist yet."""
    source = Path(path)
    if not source.exists():
        return False
    version = [_FORMAT]
    try:
        with open(source, "rb") as lines:
            for number, line in enumerate(lines, 1):
                kind, _, rest = line.rstrip(b"\n").partition(b"\t")
                try:
                    _load_line(sandbox, kind, rest, version)
                except _DAMAGED as exc:
                    detail = f"no {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
                    raise StateFileError(
                        f"{path}:{number}: unreadable snapshot line ({detail})"
                    ) from None
    except OSError as exc:
        raise StateFileError(f"{path}: cannot read the state file: {_reason(exc)}") from None
    return True


def _load_line(sandbox: Sandbox, kind: bytes, rest: bytes, version: list[int]) -> None:
    store = sandbox.customers
    if kind == b"H":
        header = orjson.loads(rest)
        if header.get("format") not in _READABLE:
            raise ValueError(f"unsupported snapshot format {header.get('format')!r}")
        version[0] = header["format"]
        sandbox.clock.restore(float(header["clock_offset"]))
        store.seq = int(header["seq"])
        positions = header.get("ids")
        for name, ids in _id_factories(sandbox).items():
            if positions is None:
                ids.move_past_unsaved_run()
            else:
                ids.resume(positions[name])
    elif kind == b"C":
        width = 3 if version[0] == 1 else 2
        fields = rest.split(b"\t", width)
        if len(fields) != width + 1:
            raise ValueError(f"a customer line has {width + 1} fields, not {len(fields)}")
        cid, blob = fields[1], fields[-1]
        if not blob.startswith(b'{"id":"%s",' % cid):  # the store reads ids from there
            raise ValueError("the customer's JSON does not start with its id")
        store.add(cid.decode(), int(fields[0]), blob)
    elif kind == b"D":
        key, cid = rest.split(b"\t", 1)
        store.deleted[cid.decode()] = int(key)
    elif kind == b"E":
        key, eid, etype, blob = rest.split(b"\t", 3)
        sandbox.events.add(Event(eid.decode(), int(key), etype.decode(), blob))
    elif kind == b"W":
        data = orjson.loads(rest)
        endpoint = Endpoint(
            data["id"],
            data["url"],
            data["secret"],
            data["enabled_events"],
            data["created"],
            data.get("deliveries", 0),
            data.get("api_version"),
            data.get("status") == "disabled",
        )
        sandbox.webhooks.endpoints[endpoint.id] = endpoint
    else:
        raise ValueError(f"unknown line kind {kind!r}")
