"""Exact frames over a pipe, and errors as typed data, between the reading process and the run.

A frame is a 33-byte header (payload length and a CRC-32 of the whole frame,
little-endian 32-bit each; a tag byte; 24 bytes of fixed-size fields) followed by the
payload.  Writes loop on `os.writev` until every byte is out (a pipe write may be cut
short, for instance when the process is stopped and continued); reads loop on
`os.read` until the frame is whole.  A frame cut short, longer than `MAX_FRAME` or
failing its checksum raises `ChannelBroken`: a damaged frame is a transport error,
never handed on to be decoded.

Errors cross the channel as JSON data (`error_to_data`, `error_from_data`): a kind
from a closed list plus the fields the engine uses (the permission that is missing,
the attempts made, Stripe's failure, whether retrying may help), rebuilt with the
known classes' own constructors; nothing is unpickled or looked up by name.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import asdict, dataclass
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

_HEADER = struct.Struct("<II1s24s")  # payload length, CRC-32, tag, fixed-size fields
#: Bytes of fixed-size fields a frame carries beside its payload (zero-padded).
META_SIZE = 24
#: No payload is larger (a page of 100 customers is about 100 KB); a bigger length
#: means the stream lost its place.
MAX_FRAME = 64 << 20


class ReaderDied(TerminalError):
    """The reading process ended without saying why (killed, or out of memory)."""


class ChannelBroken(ReaderDied):
    """A frame from the reading process arrived cut short or damaged."""


@dataclass(frozen=True)
class Frame:
    """One message: a tag, up to `META_SIZE` bytes of fixed fields, a payload."""

    tag: bytes
    meta: bytes
    payload: bytes


def write_frame(fd: int, tag: bytes, payload: bytes = b"", meta: bytes = b"") -> None:
    """Write one whole frame to `fd` (blocking), however many writes it takes."""
    if len(tag) != 1 or len(meta) > META_SIZE or len(payload) > MAX_FRAME:
        raise ValueError(f"cannot frame tag {tag!r}, {len(meta)} + {len(payload)} bytes")
    unchecked = _HEADER.pack(len(payload), 0, tag, meta)
    header = _HEADER.pack(len(payload), _checksum(unchecked, payload), tag, meta)
    _write_all(fd, [header, payload])


def _checksum(header: bytes, payload: bytes) -> int:
    """CRC-32 of the header (but its own checksum field) and the payload."""
    return zlib.crc32(payload, zlib.crc32(header[8:], zlib.crc32(header[:4])))


def _write_all(fd: int, buffers: list[bytes]) -> None:
    views = [memoryview(b) for b in buffers if b]
    while views:
        try:
            written = os.writev(fd, views)
        except InterruptedError:  # PEP 475 retries these; kept for any other runtime
            continue
        while views and written >= len(views[0]):  # drop what went out whole...
            written -= len(views.pop(0))
        if written:  # ...and the part of the next one that did
            views[0] = views[0][written:]


def read_frame(fd: int) -> Frame | None:
    """The next frame, or None when the stream ends between frames.

    Raises `ChannelBroken` when the stream ends inside a frame or the frame is damaged.
    """
    header = _read_exactly(fd, _HEADER.size, at_frame_start=True)
    if header is None:
        return None
    length, check, tag, meta = _HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ChannelBroken(f"a frame from the reading process declares {length} bytes")
    payload = _read_exactly(fd, length, at_frame_start=False) if length else b""
    assert payload is not None
    if _checksum(header, payload) != check:
        raise ChannelBroken(f"a frame of {length} bytes from the reading process is corrupt")
    return Frame(tag, meta, payload)


def _read_exactly(fd: int, size: int, *, at_frame_start: bool) -> bytes | None:
    # `bytes`, not a view of a buffer: orjson decodes `bytes` fastest.
    chunks: list[bytes] = []
    got = 0
    while got < size:
        try:
            chunk = os.read(fd, size - got)
        except InterruptedError:
            continue
        if not chunk:
            if got == 0 and at_frame_start:
                return None
            raise ChannelBroken(
                f"a frame from the reading process was cut short ({got} of {size} bytes)"
            )
        chunks.append(chunk)
        got += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
