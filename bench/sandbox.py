"""Sandbox list-page throughput: can the sandbox ever be what limits an importer?

Starts a sandbox with N customers (default 1,000,000) in a subprocess, reports its
start-up time and RSS, then pages through every customer with ``limit=100`` from one
bare httpx client (decoding each page, as an importer must, to find the next cursor).

Yardstick, measured in the same run: the same client paging a sandbox holding only
1,000 customers.  The ratio big/small shows whether page cost grows with the store
(it should stay near 1.0: pages are bisections, never scans).  Targets, printed as
ratios (measured / target): 20,000 customers/s or more from one client; start-up with
1,000,000 customers in 15 s or less and RSS of about 1 GB or less (both scaled linearly
when another --customers is given).

    python bench/sandbox.py [--customers N]
"""

from __future__ import annotations

import argparse
import time

import httpx
import orjson
import psutil

from headwater.sandbox.testing import RunningSandbox, start_sandbox

TARGET = 20_000
STARTUP_TARGET_S = 15.0  # per 1,000,000 customers
RSS_TARGET_B = 1.0e9  # per 1,000,000 customers


def page_through(sandbox: RunningSandbox, max_pages: int | None = None) -> tuple[int, float]:
    """Page newest-first with limit=100; returns (customers read, seconds)."""
    headers = {"Authorization": f"Bearer {sandbox.secret_key}"}
    params: dict[str, str | int] = {"limit": 100}
    count = pages = 0
    started = time.perf_counter()
    with httpx.Client(base_url=sandbox.url, headers=headers, timeout=30) as http:
        while max_pages is None or pages < max_pages:
            body = orjson.loads(http.get("/v1/customers", params=params).content)
            count += len(body["data"])
            pages += 1
            if not body["has_more"]:
                if max_pages is None:
                    break
                params.pop("starting_after", None)  # wrap around the small store
                continue
            params["starting_after"] = body["data"][-1]["id"]
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--yardstick-pages", type=int, default=1000)
    args = parser.parse_args()

    with start_sandbox(customers=1000) as small:
        n, secs = page_through(small, max_pages=args.yardstick_pages)
        small_rate = n / secs
    print(f"yardstick (1,000 customers): {small_rate:,.0f} customers/s over {n:,} customers")

    started = time.perf_counter()
    with start_sandbox(customers=args.customers, startup_timeout=600) as big:
        startup = time.perf_counter() - started
        rss = psutil.Process(big.pid).memory_info().rss
        n, secs = page_through(big)
        stats = big.stats()
    big_rate = n / secs
    print(
        f"start-up with {args.customers:,} customers: {startup:.1f}s, RSS {rss / 1e6:,.0f} MB "
        f"({rss / max(1, args.customers):,.0f} B/customer)"
    )
    print(
        f"full read: {n:,} customers in {secs:.1f}s = {big_rate:,.0f} customers/s "
        f"({stats['requests']:,} requests)"
    )
    print(
        f"ratio big/yardstick: {big_rate / small_rate:.2f}  (1.0 = page cost independent of size)"
    )
    scale = args.customers / 1_000_000
    print(f"throughput / {TARGET:,}/s target: {big_rate / TARGET:.2f}  (>= 1.0 meets it)")
    print(
        f"start-up / {STARTUP_TARGET_S * scale:.1f}s target: "
        f"{startup / (STARTUP_TARGET_S * scale):.2f}  (<= 1.0 meets it)"
    )
    print(
        f"RSS / {RSS_TARGET_B * scale / 1e6:,.0f} MB target: "
        f"{rss / (RSS_TARGET_B * scale):.2f}  (<= 1.0 meets it)"
    )
    assert n == args.customers, f"read {n} customers, expected {args.customers}"


if __name__ == "__main__":
    main()
