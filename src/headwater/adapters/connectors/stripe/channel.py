"""Exact frames over a pipe, and errors as typed data, between the reading process and the run.

A frame is a header (payload length, CRC-32 of length and payload; little-endian
32-bit each) followed by the payload, whose first byte is a tag.  Writes loop on
`os.write` until every byte is out (a pipe write may be cut short, for instance when
the process is stopped and continued); reads loop on `os.readv` until the frame is
whole.  A frame cut short, longer than `MAX_FRAME` or failing its checksum raises
`ChannelBroken`: a damaged frame is a transport error, never handed on to be decoded.

Errors cross the channel as JSON data (`error_to_data`, `error_from_data`): a kind
from a closed list plus the fields the engine uses (the permission that is missing,
the attempts made, Stripe's failure, whether retrying may help), rebuilt with the
known classes' own constructors; nothing is unpickled or looked up by name.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import asdict
from typing import Any

from headwater.adapters.connectors.contract import PermissionMissing
from headwater.adapters.connectors.stripe.errors import (
    ApiFailure,
    InvalidKey,
    MalformedResponse,
    PaginationLoop,
    RetriesExhausted,
    SourceUnreachable,
    StripeRequestFailed,
)
from headwater.kernel.errors import (
    HeadwaterError,
    InvalidInput,
    TerminalError,
    TransientError,
    redact,
)

_HEADER = struct.Struct("<II")  # payload length, CRC-32 of the length and the payload
#: No frame is larger (a page of 100 customers is about 100 KB); a bigger length
#: means the stream lost its place.
MAX_FRAME = 64 << 20


class ReaderDied(TerminalError):
    """The reading process ended without saying why (killed, or out of memory)."""


class ChannelBroken(ReaderDied):
    """A frame from the reading process arrived cut short or damaged."""


def write_frame(fd: int, tag: bytes, *parts: bytes) -> None:
    """Write one whole frame, tag then `parts`, to `fd` (blocking), however many writes
    it takes."""
    length = 1 + sum(len(part) for part in parts)
    check = zlib.crc32(tag, zlib.crc32(length.to_bytes(4, "little")))
    for part in parts:
        check = zlib.crc32(part, check)
    _write_all(fd, _HEADER.pack(length, check) + tag)
    for part in parts:
        _write_all(fd, part)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except InterruptedError:  # PEP 475 retries these; kept for any other runtime
            continue
        view = view[written:]


def read_frame(fd: int) -> tuple[bytes, memoryview] | None:
    """The next frame's tag and payload, or None when the stream ends between frames.

    Raises `ChannelBroken` when the stream ends inside a frame or the frame is damaged.
    """
    head = _read_exactly(fd, _HEADER.size, at_frame_start=True)
    if head is None:
        return None
    length, check = _HEADER.unpack(head)
    if not 1 <= length <= MAX_FRAME:
        raise ChannelBroken(f"a frame from the reading process declares {length} bytes")
    body = _read_exactly(fd, length, at_frame_start=False)
    assert body is not None
    if zlib.crc32(body, zlib.crc32(head[:4])) != check:
        raise ChannelBroken(f"a frame of {length} bytes from the reading process is corrupt")
    view = memoryview(body)
    return bytes(view[:1]), view[1:]


def _read_exactly(fd: int, size: int, *, at_frame_start: bool) -> bytearray | None:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        try:
            count = os.readv(fd, [view[got:]])
        except InterruptedError:
            continue
        if count == 0:
            if got == 0 and at_frame_start:
                return None
            raise ChannelBroken(
                f"a frame from the reading process was cut short ({got} of {size} bytes)"
            )
        got += count
    return buffer


def error_to_data(exc: BaseException) -> dict[str, Any]:
    """What the run needs to rebuild `exc`, as JSON-able data."""
    data: dict[str, Any] = {"message": str(exc)}
    if isinstance(exc, SourceUnreachable | RetriesExhausted):
        data["kind"] = (
            "source_unreachable" if isinstance(exc, SourceUnreachable) else "retries_exhausted"
        )
        data["attempts"] = exc.attempts
        data["failure"] = _failure_data(exc.last)
    elif isinstance(exc, InvalidKey | StripeRequestFailed):
        data["kind"] = "invalid_key" if isinstance(exc, InvalidKey) else "request_failed"
        data["failure"] = _failure_data(exc.failure)
    elif isinstance(exc, PermissionMissing):
        data.update(kind="permission_missing", permission=exc.permission)
    elif isinstance(exc, MalformedResponse | PaginationLoop):
        data["kind"] = "malformed_response" if isinstance(exc, MalformedResponse) else "loop"
    elif isinstance(exc, InvalidInput):
        data.update(kind="invalid_input", location=exc.location)
    elif isinstance(exc, HeadwaterError):
        data["kind"] = "transient" if exc.transient else "terminal"
    else:  # a defect in the reader: say what it was, as a terminal error
        data.update(
            kind="terminal",
            message=f"the Stripe reading process failed: {type(exc).__name__}: {exc}",
        )
    data["message"] = redact(data["message"])  # the run may show it: never a key
    return data


def error_from_data(data: dict[str, Any]) -> HeadwaterError:
    """The error `error_to_data` described, built by its class's own constructor."""
    kind, message = data.get("kind"), str(data.get("message", ""))
    failure = _failure_from(data.get("failure"))
    if kind == "source_unreachable":
        return SourceUnreachable(message, int(data["attempts"]), failure)
    if kind == "retries_exhausted":
        return RetriesExhausted(message, int(data["attempts"]), failure)
    if kind == "invalid_key":
        return InvalidKey(message, failure)
    if kind == "request_failed" and failure is not None:
        return StripeRequestFailed(message, failure)
    if kind == "permission_missing":
        return PermissionMissing(message, permission=str(data["permission"]))
    if kind == "malformed_response":
        return MalformedResponse(message)
    if kind == "loop":
        return PaginationLoop(message)
    if kind == "invalid_input":
        location = data.get("location")
        prefix = f"{location}: " if location else ""
        return InvalidInput(message.removeprefix(prefix), location)
    if kind == "transient":
        return TransientError(message)
    return TerminalError(message)


def _failure_data(failure: ApiFailure | None) -> dict[str, Any] | None:
    return asdict(failure) if failure is not None else None


def _failure_from(data: Any) -> ApiFailure | None:
    if not isinstance(data, dict):
        return None

    def text(key: str) -> str | None:
        value = data.get(key)
        return str(value) if value is not None else None

    return ApiFailure(
        int(data["status"]), text("type"), text("code"), text("message"), text("request_id")
    )
