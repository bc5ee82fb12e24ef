"""web/tuning.py: the interpreter settings `runcast serve` applies."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from web.tuning import GC_THRESHOLDS, GIL_SWITCH_INTERVAL, tune_interpreter


@pytest.fixture
def restored_interpreter() -> Iterator[None]:
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    yield
    gc.set_threshold(*thresholds)
    sys.setswitchinterval(interval)


def test_tune_interpreter_sets_the_switch_interval_and_gc_thresholds(
    restored_interpreter: None,
) -> None:
    gc.set_threshold(700, 10, 10)
    sys.setswitchinterval(0.005)
    tune_interpreter()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL)
