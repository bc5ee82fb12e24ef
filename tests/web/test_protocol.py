"""web/protocol.py: which control frames surround a subscription's events (sans-IO), and what
they say (spec: "Reconnect to a RUNNING run" / "Reconnect to a FINISHED run")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.events import RunStatus
from web import protocol
from web.protocol import Mode, SubscriptionFraming

RUN = "run-1"


def event(index: int) -> dict[str, Any]:
    return {"event": "StepProgress", "event_index": index}


def stream(
    framing: SubscriptionFraming, delivered: int, batch_sizes: Sequence[int] = ()
) -> list[dict[str, Any]]:
    """What a socket is sent: the opening frames, then the events in batches (`batch_sizes`,
    then one at a time), each with the frames due among them. Events are stand-ins numbered by
    delivery order."""
    frames = [json.loads(f) for f in framing.opening()]
    sizes = iter(batch_sizes)
    sent = 0
    while sent < delivered:
        size = min(next(sizes, 1), delivered - sent)
        batch = [json.dumps(event(index)) for index in range(sent, sent + size)]
        frames.extend(json.loads(f) for f in framing.with_events(sent, batch))
        sent += size
    return frames


def kinds(frames: list[dict[str, Any]]) -> list[str]:
    return [f["event"] for f in frames]


# --- finished runs -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.ERROR, RunStatus.CANCELLED])
def test_finished_run_gets_replay_header_then_events_and_no_subscribed(status: RunStatus) -> None:
    framing = SubscriptionFraming(RUN, status, event_count=42, missed=42)
    frames = stream(framing, 42)
    assert frames[0] == {
        "event": "replay",
        "run_id": RUN,
        "status": status.value,
        "total_events": 42,
        "message": f"Run {status.value}. Replaying all events.",
    }
    assert frames[1:] == [event(i) for i in range(42)]
    assert "subscribed" not in kinds(frames) and "catch_up" not in kinds(frames)


def test_finished_run_replay_ignores_missed() -> None:
    """last_event_index is ignored for finished runs: the header is the same whatever `missed`."""
    for missed in (0, 5, 42):
        framing = SubscriptionFraming(RUN, RunStatus.COMPLETED, event_count=42, missed=missed)
        assert kinds(stream(framing, 42)).count("replay") == 1
        assert "subscribed" not in kinds(stream(framing, 42))


# --- running runs ------------------------------------------------------------------------------


def test_running_with_missed_events_catch_up_then_subscribed_after_the_missed() -> None:
    framing = SubscriptionFraming(RUN, RunStatus.RUNNING, event_count=10, missed=7)
    frames = stream(framing, 12)  # 7 missed, then 5 live
    assert frames[0] == {
        "event": "catch_up",
        "run_id": RUN,
        "status": "running",
        "missed_events": 7,
        "current_event_count": 10,
        "message": "Catching up on 7 missed events.",
    }
    assert frames[1:8] == [event(i) for i in range(7)]
    assert frames[8]["event"] == "subscribed"
    assert frames[8]["run_id"] == RUN
    assert frames[8]["status"] == "running"
    assert frames[8]["current_event_count"] == 10
    assert isinstance(frames[8]["message"], str) and frames[8]["message"]
    assert frames[9:] == [event(i) for i in range(7, 12)]


def test_running_with_nothing_missed_subscribed_first() -> None:
    framing = SubscriptionFraming(RUN, RunStatus.RUNNING, event_count=10, missed=0)
    frames = stream(framing, 3)
    assert frames[0]["event"] == "subscribed"
    assert frames[0]["current_event_count"] == 10
    assert frames[0]["status"] == "running"
    assert frames[1:] == [event(i) for i in range(3)]
    assert "catch_up" not in kinds(frames)


def test_running_with_one_missed_event() -> None:
    framing = SubscriptionFraming(RUN, RunStatus.RUNNING, event_count=1, missed=1)
    assert kinds(stream(framing, 2)) == ["catch_up", "StepProgress", "subscribed", "StepProgress"]


def test_subscribed_goes_after_the_last_missed_event_of_a_batch() -> None:
    framing = SubscriptionFraming(RUN, RunStatus.RUNNING, event_count=4, missed=2)
    assert kinds(stream(framing, 5, [5])) == ["catch_up"] + ["StepProgress"] * 2 + [
        "subscribed"
    ] + ["StepProgress"] * 3
    assert kinds(stream(framing, 5, [2, 3])) == kinds(stream(framing, 5, [1, 1, 1, 1, 1]))


def test_subscribed_not_repeated_after_later_events() -> None:
    framing = SubscriptionFraming(RUN, RunStatus.RUNNING, event_count=4, missed=2)
    assert framing.with_events(0, ["a", "b"]) != ["a", "b"]
    for delivered, frames in ((0, ["a"]), (2, ["c"]), (3, ["d", "e"]), (100, ["f"])):
        assert framing.with_events(delivered, frames) == frames


# --- STARTED mode ------------------------------------------------------------------------------


@pytest.mark.parametrize("missed", [0, 3])
@pytest.mark.parametrize("status", [RunStatus.RUNNING, RunStatus.COMPLETED])
def test_started_mode_sends_events_only(status: RunStatus, missed: int) -> None:
    framing = SubscriptionFraming(RUN, status, event_count=3, missed=missed, mode=Mode.STARTED)
    assert framing.opening() == []
    assert stream(framing, 6) == [event(i) for i in range(6)]


def test_default_mode_is_reconnect() -> None:
    assert SubscriptionFraming(RUN, RunStatus.RUNNING, 0, 0).mode is Mode.RECONNECT


# --- the other frames --------------------------------------------------------------------------


def test_fixed_frames() -> None:
    connected = json.loads(protocol.connected(False))
    assert connected["event"] == "connected" and connected["requires_auth"] is False
    assert isinstance(connected["message"], str)
    assert json.loads(protocol.connected(True))["requires_auth"] is True
    assert json.loads(protocol.PONG) == {"event": "pong"}
    assert json.loads(protocol.AUTHENTICATED)["event"] == "authenticated"
    assert json.loads(protocol.error('Run "x" not found')) == {
        "event": "error",
        "error": 'Run "x" not found',
    }
    assert json.loads(protocol.auth_error("bad token")) == {
        "event": "auth_error",
        "error": "bad token",
    }
    cancel = json.loads(protocol.cancel_requested(RUN))
    assert cancel["event"] == "cancel_requested" and cancel["run_id"] == RUN


def test_frames_are_single_line_json_text() -> None:
    for text in (protocol.catch_up(RUN, 3, 9), protocol.subscribed(RUN, 9),
                 protocol.replay(RUN, RunStatus.ERROR, 9), protocol.error("a\nb")):
        assert isinstance(text, str) and "\n" not in text
        assert isinstance(json.loads(text), dict)


# --- hypothesis: exactly one subscribed, right after the missed events --------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=200).flatmap(
        lambda count: st.tuples(
            st.just(count),
            st.integers(min_value=0, max_value=count),  # start = last_event_index + 1
            st.integers(min_value=0, max_value=50),  # live events after subscribing
        )
    ),
    st.lists(st.integers(min_value=1, max_value=60), max_size=20),  # batches the events come in
)
def test_running_reconnect_has_exactly_one_subscribed_after_the_missed(
    case: tuple[int, int, int], batch_sizes: list[int]
) -> None:
    event_count, start, live = case
    missed = event_count - start
    framing = SubscriptionFraming(RUN, RunStatus.RUNNING, event_count=event_count, missed=missed)
    frames = stream(framing, missed + live, batch_sizes)
    names = kinds(frames)
    assert names.count("subscribed") == 1
    assert "replay" not in names
    position = names.index("subscribed")
    control_before = 1 if missed else 0
    assert position == control_before + missed
    assert names[:control_before] == (["catch_up"] if missed else [])
    if missed:
        assert frames[0]["missed_events"] == missed
        assert frames[0]["current_event_count"] == event_count
    assert frames[position]["current_event_count"] == event_count
    # every event exactly once, in order, around the control frames
    events = [f for f in frames if f["event"] == "StepProgress"]
    assert events == [event(i) for i in range(missed + live)]
    assert names.count("catch_up") == (1 if missed else 0)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from([RunStatus.COMPLETED, RunStatus.ERROR, RunStatus.CANCELLED]),
    st.integers(min_value=0, max_value=200),
    st.integers(min_value=0, max_value=200),
)
def test_finished_reconnect_has_one_replay_and_no_subscribed(
    status: RunStatus, event_count: int, missed: int
) -> None:
    framing = SubscriptionFraming(RUN, status, event_count=event_count, missed=missed)
    names = kinds(stream(framing, event_count))
    assert names[0] == "replay"
    assert names.count("replay") == 1
    assert "subscribed" not in names and "catch_up" not in names
