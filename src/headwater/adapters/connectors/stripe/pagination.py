"""Walking a Stripe list: the page shape and a cursor that refuses to loop."""

from __future__ import annotations

from typing import Any, Literal

from headwater.adapters.connectors.stripe.errors import MalformedResponse, PaginationLoop
from headwater.kernel.records import Record

Direction = Literal["starting_after", "ending_before"]


def parse_list(body: dict[str, Any], what: str) -> tuple[list[Record], bool]:
    """Return (data, has_more) of a list response; raise if it is not one."""
    data = body.get("data")
    has_more = body.get("has_more")
    if not isinstance(data, list) or not isinstance(has_more, bool):
        raise MalformedResponse(f"Stripe returned a malformed list for {what}: no data/has_more")
    if has_more and not data:
        # Nothing to page on from: taken as the end, the rest of the list would go
        # unread (and a full run's end would purge what it holds).
        raise MalformedResponse(
            f"Stripe returned a malformed list for {what}: has_more with no data"
        )
    for index, item in enumerate(data):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("id"), str)
            and isinstance(item.get("created"), int)
        ):
            raise MalformedResponse(
                f"Stripe returned a malformed list for {what}: item {index} has no "
                "string id or integer created"
            )
    return data, has_more


class Cursor:
    """Where a walk through one list stands.

    ``starting_after`` walks from newest to oldest (the next token is the last item of
    a page); ``ending_before`` walks from oldest to newest (the first item of a page).
    A token seen before means the server is cycling, so `advance` raises.
    """

    def __init__(self, direction: Direction, start: str | None = None) -> None:
        self.direction = direction
        self.token = start
        self.finished = False
        self.pages = 0
        self._seen: set[str] = {start} if start else set()

    def params(self) -> dict[str, str]:
        return {self.direction: self.token} if self.token else {}

    def advance(self, data: list[Record], has_more: bool) -> None:
        """Move past a page just read; set `finished` when there is nothing more."""
        self.pages += 1
        if not has_more or not data:
            self.finished = True
            return
        token = str(data[-1]["id"] if self.direction == "starting_after" else data[0]["id"])
        if token in self._seen:
            raise PaginationLoop(
                f"Stripe pagination repeated the token {token} ({self.direction}) after "
                f"{self.pages} pages; stopping instead of looping forever"
            )
        self._seen.add(token)
        self.token = token
