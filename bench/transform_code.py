"""JavaScript and Python `transform(customer)` throughput against the mapping language.

    python bench/transform_code.py [--records 100000] [--batch 1000] [--repeat 3]

The same trivial transformation (lower-case the email, split the name) is run four
ways over the same Stripe-shaped customers (Stripe's own example customer, varied),
in batches as the run engine sends them: the mapping language, a hand-written
in-process Python function, JavaScript in V8 and Python in one sandboxed worker.
Prints records/s for each and the ratios against the mapping language measured in
this same run.  Target: at least 100,000 records/s for each code runtime (each batch
runs on one core at a time: the server waits while V8 or the worker computes).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from headwater.adapters.connectors.stripe.schema import STRIPE_CUSTOMER_SCHEMA
from headwater.adapters.transformations.javascript import compile_javascript
from headwater.adapters.transformations.mapping import compile_mapping
from headwater.adapters.transformations.python import compile_python
from headwater.kernel.model import DEFAULT_MODEL

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "stripe" / "customer-fixture.json"
MAPPING = {
    "email": "lower(email)",
    "first_name": 'split_part(name, " ", 1)',
    "last_name": 'split_part(name, " ", 2)',
}
JAVASCRIPT = """
function transform(customer) {
  const parts = customer.name.split(" ");
  return {email: customer.email.toLowerCase(), first_name: parts[0], last_name: parts[1]};
}
"""
PYTHON = """
def transform(customer):
    first, last = customer["name"].split(" ", 1)
    return {"email": customer["email"].lower(), "first_name": first, "last_name": last}
"""


def hand_written(batch: Sequence[dict[str, Any]]) -> list[Any]:
    out = []
    for customer in batch:
        first, last = customer["name"].split(" ", 1)
        out.append({"email": customer["email"].lower(), "first_name": first, "last_name": last})
    return out


def customers(n: int) -> list[dict[str, Any]]:
    try:
        base = json.loads(FIXTURE.read_text())
    except OSError:
        base = {"object": "customer", "metadata": {}, "address": None, "created": 1680893993}
    first = ["Ada", "Grace", "Alan", "Linus", "Maria", "Jean"]
    last = ["Lovelace", "Hopper", "Turing", "Rossi", "Dupont"]
    return [
        {
            **base,
            "id": f"cus_{i:014d}",
            "email": f"User{i}@Example.COM",
            "name": f"{first[i % 6]} {last[i % 5]}",
            "created": 1_600_000_000 + i,
        }
        for i in range(n)
    ]


def rate(run: Callable[[Sequence[dict[str, Any]]], list[Any]], batches: list[Any], n: int) -> float:
    best = float("inf")
    for _ in range(n):
        start = time.perf_counter()
        for batch in batches:
            run(batch)
        best = min(best, time.perf_counter() - start)
    return sum(len(b) for b in batches) / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    records = customers(args.records)
    batches = [records[i : i + args.batch] for i in range(0, len(records), args.batch)]
    size = len(json.dumps(records[0]))
    mapping = compile_mapping(MAPPING, DEFAULT_MODEL, STRIPE_CUSTOMER_SCHEMA)
    js = compile_javascript(JAVASCRIPT)
    py = compile_python(PYTHON)
    try:
        runs = {
            "mapping language": mapping.transform,
            "hand-written Python": hand_written,
            "JavaScript (V8)": js.transform,
            "Python (worker)": py.transform,
        }
        expected = hand_written(batches[0])
        for name, run in runs.items():
            if run(batches[0]) != expected:
                raise SystemExit(f"{name} disagrees with the hand-written function")
        rates = {name: rate(run, batches, args.repeat) for name, run in runs.items()}
    finally:
        js.close()
        py.close()
    base = rates["mapping language"]
    print(f"{len(records):,} records of ~{size:,} bytes of JSON, batches of {args.batch}")
    for name, value in rates.items():
        print(f"{name:<20}: {value:>10,.0f} records/s   ratio to mapping {value / base:5.2f}")
    for name in ("JavaScript (V8)", "Python (worker)"):
        verdict = "met" if rates[name] >= 100_000 else "NOT met"
        print(f"target 100,000/s for {name}: {verdict}")


if __name__ == "__main__":
    main()
