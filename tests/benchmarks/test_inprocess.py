"""benchmarks/scenarios/inprocess.py: the subscriber's order check passes exactly the frames that
carry 0, 1, 2, ..., whether or not a frame ends with its index, cut into any batches. (The scenario
itself runs at a tiny size in test_throughput.py.)"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.events import EventEncoder, RunInfo, encode_event
from benchmarks.scenarios.inprocess import InOrder, frame_endings

RUN = RunInfo("run-1", "burst", "Burst", "session-1", message="m")
ENCODER = EventEncoder(RUN)


def frame(index: int, reserved_key: bool) -> str:
    if reserved_key:  # a field named like the envelope's: `encode_event` puts it elsewhere
        return encode_event(RUN, index, "StepProgress", {"event_index": -1, "content": "x"})
    return ENCODER.encode(index, "StepProgress", {"content": "x"})


@given(
    indices=st.lists(st.integers(0, 12), max_size=12),
    reserved=st.lists(st.booleans(), min_size=12, max_size=12),
    cut=st.integers(1, 5),
)
def test_the_check_passes_exactly_the_indices_in_order(
    indices: list[int], reserved: list[bool], cut: int
) -> None:
    frames = [frame(index, reserved[i]) for i, index in enumerate(indices)]
    check = InOrder(RUN.run_id, frame_endings(len(indices) // 2))  # past them: parsed
    in_order = indices == list(range(len(indices)))
    batches = [frames[i : i + cut] for i in range(0, len(frames), cut)]
    if in_order:
        for batch in batches:
            check.take(batch)
        assert check.delivered == len(indices)
    else:
        with pytest.raises(AssertionError, match="was due"):
            for batch in batches:
                check.take(batch)


def test_a_frame_with_its_index_elsewhere_is_parsed() -> None:
    reserved = frame(0, reserved_key=True)
    assert not reserved.endswith('"event_index":0}')
    check = InOrder(RUN.run_id, frame_endings(2))
    check.take([reserved, frame(1, reserved_key=False)])
    assert check.delivered == 2
