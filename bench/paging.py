"""The yardstick of the import benches: one bare client paging through the sandbox."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from headwater.sandbox.testing import RunningSandbox


def yardstick(
    sb: RunningSandbox, on_page: Callable[[list[dict[str, Any]]], None] | None = None
) -> tuple[float, int]:
    """Customers/s of one bare client paging through the whole list, newest first.

    `on_page` sees every page (outside the timing only in the sense that it should be
    trivial; the benches use it to note `created` values).
    """
    headers = {"Authorization": f"Bearer {sb.secret_key}"}
    count, cursor = 0, None
    start = time.perf_counter()
    with httpx.Client(base_url=sb.url, headers=headers, timeout=60) as client:
        while True:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["starting_after"] = cursor
            page = orjson.loads(client.get("/v1/customers", params=params).content)
            count += len(page["data"])
            if on_page is not None:
                on_page(page["data"])
            if not page["has_more"]:
                break
            cursor = page["data"][-1]["id"]
    return count / (time.perf_counter() - start), count
