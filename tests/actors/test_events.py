"""actors/events.py: the flat Agno-shaped event frame, encoded once (`EventEncoder` gives the same
frame as `encode_event`), and the terminal status map."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.events import (
    RESERVED_KEYS,
    STEP_PROGRESS,
    STEP_STARTED,
    WORKFLOW_CANCELLED,
    WORKFLOW_COMPLETED,
    WORKFLOW_ERROR,
    WORKFLOW_STARTED,
    RunInfo,
    RunStatus,
    EventEncoder,
    encode_event,
    final_status,
)

RUN = RunInfo(
    run_id="r1",
    workflow_id="content-creation-workflow",
    workflow_name="Content Creation Workflow",
    session_id="s1",
    user_id="u1",
    message="hello",
)

HEADER = ["created_at", "event", "workflow_id", "workflow_name", "session_id", "run_id",
          "nested_depth"]


def test_field_order_header_then_own_fields_then_event_index() -> None:
    frame = encode_event(
        RUN, 3, STEP_STARTED, {"step_name": "research", "step_index": 0, "step_id": "x"}
    )
    body = json.loads(frame)
    assert list(body) == [*HEADER, "step_name", "step_index", "step_id", "event_index"]
    assert body["event"] == STEP_STARTED
    assert body["workflow_id"] == RUN.workflow_id
    assert body["workflow_name"] == RUN.workflow_name
    assert body["session_id"] == RUN.session_id
    assert body["run_id"] == RUN.run_id
    assert body["nested_depth"] == 0
    assert body["event_index"] == 3
    assert body["step_name"] == "research" and body["step_index"] == 0


def test_none_fields_are_dropped_other_falsy_values_kept() -> None:
    frame = encode_event(
        RUN,
        0,
        STEP_PROGRESS,
        {"content": None, "data": None, "step_index": 0, "text": "", "ok": False, "items": []},
    )
    body = json.loads(frame)
    assert "content" not in body and "data" not in body
    assert body["step_index"] == 0 and body["text"] == "" and body["ok"] is False
    assert body["items"] == []
    assert list(body)[-1] == "event_index"


def test_nested_values_are_kept_as_given() -> None:
    nested = {"content": "c", "error": None, "metrics": {"steps": {}, "duration": 1.5}}
    body = json.loads(encode_event(RUN, 7, "StepOutput", {"step_output": nested}))
    assert body["step_output"] == nested  # only top-level None fields are dropped


def test_user_id_and_message_are_not_part_of_the_event() -> None:
    body = json.loads(encode_event(RUN, 0, WORKFLOW_STARTED, {}))
    assert list(body) == [*HEADER, "event_index"]
    assert "user_id" not in body and "message" not in body


def test_the_frame_is_compact_text_with_the_time_in_whole_seconds() -> None:
    before = int(time.time())
    frame = encode_event(RUN, 5, WORKFLOW_COMPLETED, {"content": "done"})
    after = int(time.time())
    assert isinstance(frame, str) and "\n" not in frame and ", " not in frame
    created_at = json.loads(frame)["created_at"]
    assert isinstance(created_at, int) and before <= created_at <= after


def test_unicode_is_encoded_as_utf8_text() -> None:
    frame = encode_event(RUN, 0, STEP_PROGRESS, {"content": "é🙂"})
    assert json.loads(frame)["content"] == "é🙂"


@pytest.mark.parametrize(
    ("kind", "cancelled", "status"),
    [
        (WORKFLOW_ERROR, False, RunStatus.ERROR),
        (WORKFLOW_ERROR, True, RunStatus.ERROR),
        (WORKFLOW_COMPLETED, False, RunStatus.COMPLETED),
        (WORKFLOW_COMPLETED, True, RunStatus.CANCELLED),
        (WORKFLOW_CANCELLED, True, None),  # WorkflowCompleted follows it and ends the run
        (WORKFLOW_CANCELLED, False, None),
        (WORKFLOW_STARTED, False, None),
        (STEP_STARTED, True, None),
        (STEP_PROGRESS, False, None),
    ],
)
def test_final_status(kind: str, cancelled: bool, status: RunStatus | None) -> None:
    assert final_status(kind, cancelled) is status


def test_only_running_is_unfinished() -> None:
    assert [s for s in RunStatus if not s.finished] == [RunStatus.RUNNING]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
FIELD_NAMES = st.text(max_size=12) | st.sampled_from(sorted(RESERVED_KEYS))


def without_created_at(frame: str) -> str:
    return re.sub(r'^\{"created_at":\d+,', '{"created_at":0,', frame)


@given(
    st.builds(RunInfo, st.text(max_size=12), st.text(max_size=12), st.text(max_size=12), st.text(max_size=12)),
    st.integers(0, 10**9),
    st.text(max_size=16),
    st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=5),
)
def test_the_run_encoder_gives_the_frame_encode_event_gives(
    run: RunInfo, index: int, kind: str, fields: dict[str, Any]
) -> None:
    fast = EventEncoder(run).encode(index, kind, fields)
    reference = encode_event(run, index, kind, fields)
    assert without_created_at(fast) == without_created_at(reference)


def test_the_run_encoder_takes_the_time_of_each_event_across_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The encoder keeps the head of a frame for the second it was made in: an event in a later
    second, of a kind seen before, has that later second."""
    clock = iter([100.2, 100.9, 101.0, 105.5, 105.7])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    encoder = EventEncoder(RUN)
    kinds = [STEP_PROGRESS, STEP_PROGRESS, STEP_PROGRESS, STEP_PROGRESS, STEP_STARTED]
    frames = [encoder.encode(i, kind, {"content": i}) for i, kind in enumerate(kinds)]
    assert [json.loads(f)["created_at"] for f in frames] == [100, 100, 101, 105, 105]
    assert [json.loads(f)["event"] for f in frames] == kinds
