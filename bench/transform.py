"""Filter + mapping throughput against a hand-written Python yardstick (same run, one core).

    python bench/transform.py [--records 100000] [--repeat 3]

Prints records/s for the compiled filter+mapping and for a hand-written function that
does the same work with the same null semantics, and their ratio.  Targets: at least
200,000 records/s and a ratio of at least 0.5.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from headwater.adapters.connectors.stripe.schema import STRIPE_CUSTOMER_SCHEMA
from headwater.adapters.transformations.filters import compile_filter
from headwater.adapters.transformations.mapping import compile_mapping
from headwater.kernel.model import DEFAULT_MODEL

FILTER = {
    "logical": "and",
    "conditions": [
        {"property": "created", "operator": "is after", "values": ["2019-01-01"]},
        {
            "logical": "or",
            "conditions": [
                {"property": "address.country", "operator": "is one of", "values": ["IT", "FR"]},
                {"property": "metadata.plan", "operator": "is", "values": ["pro"]},
            ],
        },
    ],
}

MAPPING = {
    "email": "lower(trim(email))",
    "first_name": 'split_part(name, " ", 1)',
    "last_name": 'split_part(name, " ", 2)',
    "phone": "phone",
    "address.city": "address.city",
    "address.postal_code": "address.postal_code",
    "address.country": "upper(address.country)",
    "currency": "upper(currency)",
    "created_at": "created",
    "metadata": "metadata",
}


def hand_written(r: dict[str, Any]) -> dict[str, Any] | None:
    created = r.get("created")
    if not (type(created) is int and created >= 1546387200):
        return None
    address = r.get("address")
    country = address.get("country") if type(address) is dict else None
    meta = r.get("metadata")
    plan = meta.get("plan") if type(meta) is dict else None
    if country not in ("IT", "FR") and plan != "pro":
        return None
    email, name, currency = r.get("email"), r.get("name"), r.get("currency")
    return {
        "email": None if email is None else email.strip().lower(),
        "first_name": None if name is None else name.split(" ")[0],
        "last_name": None if name is None else [*name.split(" "), ""][1],
        "phone": r.get("phone"),
        "address.city": address.get("city") if type(address) is dict else None,
        "address.postal_code": address.get("postal_code") if type(address) is dict else None,
        "address.country": None if country is None else country.upper(),
        "currency": None if currency is None else currency.upper(),
        "created_at": created,
        "metadata": meta,
    }


def customers(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    first = ["Ada", "Grace", "Alan", "Linus", "Maria", "Jean"]
    last = ["Lovelace", "Hopper", "Turing", "Rossi", "Dupont"]
    out = []
    for i in range(n):
        has_address = rnd.random() < 0.8
        out.append(
            {
                "id": f"cus_{i:010d}",
                "object": "customer",
                "email": f" User{i}@Example.COM " if rnd.random() < 0.9 else None,
                "name": f"{rnd.choice(first)} {rnd.choice(last)}" if rnd.random() < 0.85 else None,
                "phone": "+39 06 1234" if rnd.random() < 0.3 else None,
                "created": rnd.randrange(1500000000, 1750000000),
                "currency": rnd.choice(["eur", "usd", None]),
                "address": {
                    "city": "Rome",
                    "country": rnd.choice(["IT", "FR", "US", "DE"]),
                    "line1": "Via Roma 1",
                    "line2": None,
                    "postal_code": "00100",
                    "state": None,
                }
                if has_address
                else None,
                "metadata": {"plan": rnd.choice(["pro", "free"])},
                "balance": 0,
                "livemode": False,
            }
        )
    return out


def run_compiled(records: list[dict[str, Any]]) -> list[Any]:
    keep = compile_filter(FILTER, STRIPE_CUSTOMER_SCHEMA)
    mapping = compile_mapping(MAPPING, DEFAULT_MODEL, STRIPE_CUSTOMER_SCHEMA)
    kept = [r for r in records if keep(r)]
    return mapping.transform(kept)


def run_hand(records: list[dict[str, Any]]) -> list[Any]:
    out = []
    for r in records:
        v = hand_written(r)
        if v is not None:
            out.append(v)
    return out


def best(fn: Callable[[list[dict[str, Any]]], list[Any]], records: list[Any], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn(records)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--section",
        choices=["mapping", "code", "all"],
        default="all",
        help="mapping: filter + mapping language (issue 4); code: JavaScript and Python "
        "runtimes against the mapping language (issue 5, bench/transform_code.py)",
    )
    args = parser.parse_args()
    if args.section != "mapping":
        import transform_code  # the sibling script; `python bench/transform.py` finds it

        print("== JavaScript and Python transformations ==")
        transform_code.main(["--records", str(args.records), "--repeat", str(args.repeat)])
        if args.section == "code":
            return
        print("== filter + mapping language ==")
    records = customers(args.records)
    ours, theirs = run_compiled(records), run_hand(records)
    if ours != theirs:
        raise SystemExit("compiled filter+mapping and the yardstick disagree")
    t_ours = best(run_compiled, records, args.repeat)
    t_hand = best(run_hand, records, args.repeat)
    rate_ours, rate_hand = len(records) / t_ours, len(records) / t_hand
    print(f"records: {len(records)}, kept by filter: {len(ours)}")
    print(f"compiled filter+mapping: {rate_ours:,.0f} records/s")
    print(f"hand-written yardstick : {rate_hand:,.0f} records/s")
    print(f"ratio compiled/hand    : {rate_ours / rate_hand:.2f} (target >= 0.50)")
    print(f"target 200,000/s       : {'met' if rate_ours >= 200_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
