"""The source interface (Stripe first).  See `headwater.adapters.connectors.stripe`.

Contract:

- `read_full` returns `Pages`: an iterator of pages (lists) of records.  Across all
  pages every record present in the source when the first page was asked for, and not
  deleted during the read, appears exactly once; page order is unspecified (windows
  are read in parallel).  Ends by stopping.  Calling it may prepare the read (start a
  process) but reads nothing from the source before the first page is asked for, so a
  caller may take the `event_position` in between; `close()` ends the read, started
  or not.
- `event_position` returns an opaque JSON-able marker of where the change stream
  stands *now*; taken before a full read, it guarantees that `read_changes` from it
  sees every change made during and after that read.  (Taken with a full read
  prepared and not begun, it may begin that read and mark a point before its first
  page was served: the same guarantee, without waiting for a request of its own.)
- `read_time()`, after `event_position` was taken for a prepared full read: when that
  read began by the source's clock (records are stamped with it, as changes are with
  their times, so "latest" never depends on this machine's clock); else None.
- `read_created_since(created)`: like `read_full`, limited to records created at or
  after `created` (unix seconds).
- `read_changes(position)` yields `ChangeBatch` objects in chronological order; each
  carries the position that is safe to save once that batch's writes have committed.
  Raises `HistoryExpired` when the position is older than the source keeps history.
- `interrupt()`, from any thread: the run was asked to stop.  The source sends
  nothing more, and a read under way raises at once in the thread that iterates it
  instead of waiting on the source (Stripe's: a full read's reading process ends; a
  wait between attempts ends; the answer to a request on the wire is dropped when it
  comes).  `close()` still follows.
- Errors: `TransientError` subclasses after retries were exhausted, `TerminalError`
  subclasses for bad keys / missing permissions; messages never contain the key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from headwater.kernel.errors import TerminalError
from headwater.kernel.records import Record


class HistoryExpired(TerminalError):
    """The saved change position is older than the source's retained history."""


class PermissionMissing(TerminalError):
    """The key lacks a permission; `permission` names it (e.g. ``Events: Read``)."""

    def __init__(self, message: str, permission: str) -> None:
        self.permission = permission
        super().__init__(message)


@dataclass
class Change:
    """The latest state of one record within a batch of changes."""

    source_id: str
    kind: str  # "created" | "updated" | "deleted"
    record: Record | None  # None when deleted
    at: int  # unix seconds of the change


@dataclass
class ChangeBatch:
    changes: list[Change]
    position: dict[str, Any]
    api_calls: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Pages(Protocol):
    """A read in progress: iterate it for pages; `close()` when done or abandoning it.
    (A generator of pages is one.)"""

    def __iter__(self) -> Iterator[list[Record]]: ...

    def __next__(self) -> list[Record]: ...

    def close(self) -> None: ...


class Source(Protocol):
    def read_full(self) -> Pages: ...

    def event_position(self) -> dict[str, Any]: ...

    def read_time(self) -> datetime | None:
        """When the full read an `event_position` was taken for began, by the source's
        clock (its records are as of that time or later, as its changes' times are);
        None when no position was taken for it (the caller's clock then stands in)."""

    def read_changes(self, position: dict[str, Any]) -> Iterator[ChangeBatch]: ...

    def read_created_since(self, created: int) -> Pages:
        """Records with ``created >= created`` (for keys that cannot read the change
        stream); same exactly-once guarantee as `read_full`."""

    def interrupt(self) -> None: ...

    def close(self) -> None: ...
