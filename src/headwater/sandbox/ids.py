"""Stripe-like object ids: a prefix and 14 (or more) base-62 characters."""

from __future__ import annotations

import random

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def encode(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    return "".join(chars)


class IdFactory:
    """Deterministic id source: the same seed yields the same sequence of ids."""

    def __init__(self, seed: int, stream: str) -> None:
        self._rng = random.Random(f"{seed}:{stream}")

    def make(self, prefix: str, width: int = 14) -> str:
        return prefix + encode(self._rng.getrandbits(6 * width), width)
