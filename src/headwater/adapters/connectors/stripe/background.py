"""A call made on a thread of its own, whose outcome is taken later (`Background.outcome`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """`call()` on a daemon thread, started by `start`; `outcome` waits for it and
    returns its value or raises its error, which is never lost.  `failed`, if given,
    is called on the thread when `call` raises (to wake whoever waits on something
    the call would have done)."""

    def __init__(
        self, call: Callable[[], T], name: str, failed: Callable[[], None] | None = None
    ) -> None:
        self._call, self._failed = call, failed
        self._value: list[T] = []  # the value, once there is one
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Background[T]:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._value.append(self._call())
        except BaseException as exc:  # raised by `outcome`
            self._error = exc
            if self._failed is not None:
                self._failed()

    def outcome(self) -> T:
        """The call's value, once it returned (its error raised here)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value[0]
