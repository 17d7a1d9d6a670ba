"""The run engine's garbage-collector setting: raised while runs are live, then restored."""

from __future__ import annotations

import gc
import threading

import pytest

from headwater.services.pipelines.garbage import RUN_GC_THRESHOLD, fewer_collections


def test_threshold_is_raised_during_runs_and_restored_after_the_last() -> None:
    before = gc.get_threshold()
    first_in = threading.Event()
    second_done = threading.Event()
    seen: list[tuple[int, int, int]] = []

    def second_run() -> None:
        first_in.wait(5)
        with fewer_collections():
            seen.append(gc.get_threshold())
        second_done.set()

    worker = threading.Thread(target=second_run)
    worker.start()
    with fewer_collections():
        first_in.set()
        assert second_done.wait(5)
        # The second run ended while the first is still live: the setting stays.
        assert gc.get_threshold() == (RUN_GC_THRESHOLD, *before[1:])
    worker.join()
    assert seen == [(RUN_GC_THRESHOLD, *before[1:])]
    assert gc.get_threshold() == before


def test_threshold_is_restored_when_a_run_raises() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError, match="boom"), fewer_collections():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before
