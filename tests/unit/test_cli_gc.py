"""`hub serve` tunes the cyclic garbage collector of its own process (hub/cli.py, tune_gc)."""

from __future__ import annotations

import gc

from hub import cli


def test_tune_gc_freezes_start_up_objects_and_collects_the_young_generation_less_often() -> None:
    before = gc.get_threshold()
    try:
        cli.tune_gc()
        assert gc.get_threshold() == (cli.GC_YOUNG_THRESHOLD, before[1], before[2])
        assert gc.get_freeze_count() > 0  # what existed at start-up is no longer walked
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
