"""List pagination (DESIGN.md §8): ``limit`` and ``starting_after`` in, newest first,
``{"data": [...], "has_more": bool}`` out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

from fastapi import Query

from headwater.kernel.errors import InvalidInput

T = TypeVar("T")

MAX_LIMIT = 100

Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"How many items per page (1 to {MAX_LIMIT}).")
]
StartingAfter = Annotated[
    str | None,
    Query(
        max_length=40,
        description="The id of the last item of the previous page: this page starts after it.",
    ),
]


def page(
    items: Sequence[T], limit: int, starting_after: str | None, id_of: Callable[[T], str]
) -> tuple[list[T], bool]:
    """One page of `items` (already newest first) and whether more follow.

    `InvalidInput` at ``starting_after`` when no item of the list has that id (as
    for an object of another workspace): the same answer as every other list's.
    """
    start = 0
    if starting_after is not None:
        ids = [id_of(item) for item in items]
        if starting_after not in ids:
            raise InvalidInput(f"no item with id {starting_after!r} in this list", "starting_after")
        start = ids.index(starting_after) + 1
    return list(items[start : start + limit]), len(items) > start + limit
