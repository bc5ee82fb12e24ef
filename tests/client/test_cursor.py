"""client/cursor.py without sockets: against a model of the server's answers to `reconnect`,
over connections cut at any frame, with frames of other runs, duplicates and lost live events
mixed in, a watch delivers every event from `from_index` exactly once, in order, and is finished
exactly when the run's last event is out; error frames end the watch or ask for a reconnect."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.cursor import Deliver, Fail, Ignore, Reconnect, WatchCursor, refusal
from client.errors import (
    AuthenticationFailed,
    HistoryGone,
    Refused,
    RunNotFound,
    ServerError,
    WorkflowNotFound,
)

RUN = "run-1"
OTHER = "run-2"


def event(index: int, count: int, run_id: str = RUN) -> dict[str, Any]:
    """Event `index` of a run of `count` events: WorkflowStarted, steps, WorkflowCompleted."""
    name = "WorkflowStarted" if index == 0 else "StepProgress"
    if index == count - 1:
        name = "WorkflowCompleted"
    return {"event": name, "run_id": run_id, "event_index": index}


def server_answer(command: dict[str, Any], count: int, existing: int) -> list[dict[str, Any]]:
    """What the server sends for `command` while the run has `existing` of its `count` events
    (finished once it has them all)."""
    assert command["action"] == "reconnect" and command["run_id"] == RUN
    last = command["last_event_index"]
    start = 0 if last is None else last + 1
    if existing == count:
        return [{"event": "replay", "run_id": RUN, "total_events": count}] + [
            event(i, count) for i in range(count)
        ]
    if start > existing:
        return [{"event": "error", "error": f"last_event_index {last} is beyond the last event"
                 f" of run {RUN} (it has {existing} events, indices 0..{existing - 1})"}]
    subscribed = {"event": "subscribed", "run_id": RUN, "current_event_count": existing}
    if start == existing:
        return [subscribed]
    catch_up = {"event": "catch_up", "run_id": RUN, "missed_events": existing - start,
                "current_event_count": existing}
    return [catch_up, *(event(i, count) for i in range(start, existing)), subscribed]


LAST_CONNECTION = 30

NOISE = st.sampled_from(
    [
        {"event": "pong"},
        {"event": "cancel_requested", "run_id": RUN},
        {"event": "StepProgress", "run_id": OTHER, "event_index": 3},
        {"event": "WorkflowCompleted", "run_id": OTHER, "event_index": 0},
        {"event": "error", "run_id": OTHER, "error": f"Run {OTHER} not found"},
        {"event": "subscribed", "run_id": OTHER, "current_event_count": 7},
    ]
)


def feed(cursor: WatchCursor, frames: list[dict[str, Any]]) -> tuple[list[int], str]:
    """Hand `frames` to the cursor until it asks to reconnect, fails or is finished: the
    indices delivered, and how the connection ended."""
    delivered = []
    for frame in frames:
        step = cursor.receive(frame, json.dumps(frame))
        if isinstance(step, Deliver):
            assert step.event.data == frame and json.loads(step.event.raw) == frame
            delivered.append(step.event.index)
        elif isinstance(step, Reconnect):
            return delivered, "reconnect"
        elif isinstance(step, Fail):
            return delivered, f"fail: {step.error}"
        else:
            assert isinstance(step, Ignore)
        if cursor.finished:
            return delivered, "finished"
    return delivered, "dropped"


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(1, 40), st.integers(0, 45))
def test_every_event_once_in_order_over_cut_connections(
    data: st.DataObject, count: int, from_index: int
) -> None:
    cursor = WatchCursor.starting_at(RUN, from_index)
    existing = data.draw(st.integers(1, count), label="events at the first connection")
    delivered: list[int] = []
    for connection in range(LAST_CONNECTION + 1):
        if connection == LAST_CONNECTION:
            existing = count  # the run is over, and this connection is not cut
        frames = server_answer(cursor.reconnect(), count, existing)
        if frames[0]["event"] != "replay" and frames[0]["event"] != "error":
            # the live events the connection carries: a lost one now and then (a gap)
            live_until = data.draw(st.integers(existing, count), label="live events")
            live = [event(i, count) for i in range(existing, live_until)]
            if live and data.draw(st.booleans(), label="lose a live event"):
                del live[data.draw(st.integers(0, len(live) - 1), label="lost")]
            frames += live
            existing = live_until
        for _ in range(data.draw(st.integers(0, 3), label="noise")):
            at = data.draw(st.integers(0, len(frames)), label="noise at")
            frames.insert(at, data.draw(NOISE))
        if frames and data.draw(st.booleans(), label="repeat a frame"):
            first = data.draw(st.integers(0, len(frames) - 1), label="repeated")
            again = data.draw(st.integers(first + 1, len(frames)), label="repeated at")
            frames.insert(again, frames[first])
        last_try = connection == LAST_CONNECTION
        cut = len(frames) if last_try else data.draw(st.integers(0, len(frames)), label="cut")
        got, ending = feed(cursor, frames[:cut])
        delivered += got
        assert not ending.startswith("fail"), ending
        if cursor.finished:
            break
        existing = data.draw(st.integers(existing, count), label="events meanwhile")
    assert cursor.finished
    assert delivered == list(range(from_index, count))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 20), st.lists(st.integers(0, 30), max_size=40))
def test_delivered_indices_are_consecutive_whatever_arrives(
    from_index: int, arriving: list[int]
) -> None:
    """Any index sequence: the cursor delivers only the next index, drops what is at or below
    it, and asks to reconnect at anything beyond the next."""
    cursor = WatchCursor.starting_at(RUN, from_index)
    for index in arriving:
        before = cursor.last_index
        step = cursor.receive(event(index, 1000), "")
        if index == before + 1:
            assert isinstance(step, Deliver) and cursor.last_index == index
        elif index <= before:
            assert isinstance(step, Ignore) and cursor.last_index == before
        else:
            assert isinstance(step, Reconnect) and cursor.last_index == before
        assert cursor.reconnect()["last_event_index"] == (
            cursor.last_index if cursor.last_index >= 0 else None
        )


def test_a_terminal_event_finishes_the_watch_and_nothing_after_it_is_delivered() -> None:
    cursor = WatchCursor.starting_at(RUN, 0)
    for index in range(3):
        assert isinstance(cursor.receive(event(index, 3), ""), Deliver)
    assert cursor.finished
    assert isinstance(cursor.receive(event(3, 5), ""), Ignore)
    error = {"event": "error", "error": f"Run {RUN} not found"}
    assert isinstance(cursor.receive(error, ""), Ignore)


def test_a_run_that_ended_before_from_index_ends_the_watch_with_nothing() -> None:
    finished = WatchCursor.starting_at(RUN, 50)
    finished.receive({"event": "replay", "run_id": RUN, "total_events": 42}, "")
    assert finished.finished
    running = WatchCursor.starting_at(RUN, 50)
    running.resume_index = 40  # after the server said the run had 41 events
    assert running.reconnect()["last_event_index"] == 40
    assert isinstance(running.receive(event(41, 42), ""), Ignore)
    assert running.finished


def test_from_index_not_reached_yet_waits_for_it() -> None:
    cursor = WatchCursor.starting_at(RUN, 10)
    assert cursor.reconnect()["last_event_index"] == 9
    beyond = {"event": "error", "error": f"last_event_index 9 is beyond the last event of run"
              f" {RUN} (it has 4 events, indices 0..3)"}
    assert isinstance(cursor.receive(beyond, ""), Reconnect)
    assert cursor.reconnect()["last_event_index"] == 3
    for index in range(4, 10):
        assert isinstance(cursor.receive(event(index, 20), ""), Ignore)
    assert isinstance(cursor.receive(event(10, 20), ""), Deliver)
    assert cursor.reconnect()["last_event_index"] == 10
    # once it delivered, the server saying less than that is a refusal: events were lost
    lost = {"event": "error", "error": f"last_event_index 10 is beyond the last event of run"
            f" {RUN} (it has 8 events, indices 0..7)"}
    step = cursor.receive(lost, "")
    assert isinstance(step, Fail) and type(step.error) is Refused


def test_a_snapshot_ends_at_the_events_of_the_first_answer() -> None:
    cursor = WatchCursor.starting_at(RUN, 0, snapshot=True)
    cursor.receive({"event": "catch_up", "run_id": RUN, "current_event_count": 3}, "")
    for index in range(2):
        assert isinstance(cursor.receive(event(index, 10), ""), Deliver)
    # a later connection answers with more events: the snapshot still ends at the first count
    cursor.receive({"event": "subscribed", "run_id": RUN, "current_event_count": 6}, "")
    assert isinstance(cursor.receive(event(2, 10), ""), Deliver)
    assert cursor.finished
    nothing_yet = WatchCursor.starting_at(RUN, 0, snapshot=True)
    nothing_yet.receive({"event": "subscribed", "run_id": RUN, "current_event_count": 0}, "")
    assert nothing_yet.finished


def test_a_bad_event_count_is_a_server_error() -> None:
    step = WatchCursor.starting_at(RUN).receive({"event": "replay", "total_events": "x"}, "")
    assert isinstance(step, Fail) and isinstance(step.error, ServerError)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (f"Run {RUN} not found", RunNotFound),
        ("Workflow nope not found", WorkflowNotFound),
        (f"the history of run {RUN} is gone: it finished longer ago than the server keeps"
         " histories (--retention)", HistoryGone),
        ("internal error: KeyError: 'x'", ServerError),
        (f"following run {RUN} failed: boom", ServerError),
        ("unknown field for reconnect: extra", Refused),
        (f"Run {RUN} is already finished (COMPLETED)", Refused),
        (f"the live stream of run {RUN} is interrupted: Redis gone; reconnect later with the"
         " last event index seen", None),
        (f"run {RUN} is lost: the store cannot record its end: disk I/O error", None),
        ("the store cannot be read, try again later: timeout", None),
        ("the server is shutting down and starts no new runs", None),
    ],
)
def test_error_frames_mean_a_refusal_or_a_reconnect(
    message: str, expected: type[Exception] | None
) -> None:
    error = refusal(message, RUN)
    if expected is None:
        assert error is None
        step = WatchCursor.starting_at(RUN).receive({"event": "error", "error": message}, "")
        assert isinstance(step, Reconnect)
    else:
        assert type(error) is expected and str(error) == message
    if isinstance(error, RunNotFound | HistoryGone):
        assert error.run_id == RUN


def test_auth_error_fails_the_watch() -> None:
    refused = {"event": "auth_error", "error": "Invalid token"}
    step = WatchCursor.starting_at(RUN).receive(refused, "")
    assert isinstance(step, Fail) and isinstance(step.error, AuthenticationFailed)


def test_from_index_below_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="from_index must be 0 or more, got -1"):
        WatchCursor.starting_at(RUN, -1)
