"""Stripe-like object ids: a prefix and 14 (or more) base-62 characters."""

from __future__ import annotations

import random

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# `random.Random.getstate()` is (version, 624 Mersenne Twister words plus an index,
# gauss_next); ids never draw a gaussian, so the version and the 625 numbers are all of it.
_STATE_VERSION = 3
_STATE_NUMBERS = 625


def encode(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    return "".join(chars)


class IdFactory:
    """Deterministic id source: the same seed yields the same sequence of ids.

    A sandbox restarted from its ``--state`` file carries on from the `position` saved
    there, so no id made after the restart repeats one made before it.
    """

    def __init__(self, seed: int, stream: str) -> None:
        self._label = f"{seed}:{stream}"
        self._rng = random.Random(self._label)

    def make(self, prefix: str, width: int = 14) -> str:
        return prefix + encode(self._rng.getrandbits(6 * width), width)

    def position(self) -> list[int]:
        """Where the sequence has got to, as numbers that JSON can hold."""
        version, words, _gauss = self._rng.getstate()
        return [version, *words]

    def resume(self, position: object) -> None:
        """Carry on from a `position` saved earlier (ValueError if it is not one)."""
        if (
            not isinstance(position, list)
            or len(position) != 1 + _STATE_NUMBERS
            or position[0] != _STATE_VERSION
            or not all(type(n) is int and 0 <= n < 2**32 for n in position[1:])
        ):
            raise ValueError("unreadable id generator position")
        try:
            self._rng.setstate((_STATE_VERSION, tuple(position[1:]), None))
        except (TypeError, ValueError, OverflowError):
            raise ValueError("unreadable id generator position") from None

    def move_past_unsaved_run(self) -> None:
        """Leave the seed's sequence for one of its own: for a run restarted from a
        snapshot that did not save its position (older files), whose ids were drawn
        from the start of the seed's sequence and would otherwise be drawn again."""
        self._rng = random.Random(self._label + ":restarted")
