"""web/sse_framing.py without sockets: where a stream starts (Last-Event-ID over ?from=), the
text of its blocks, and which control events surround the run's events, however they are
batched (hypothesis, with a text/event-stream parser as the standard has a client parse)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.events import RunStatus
from web import protocol
from web.sse_framing import (
    KEEP_ALIVE,
    MAX_INDEX,
    BadResume,
    EventStreamFraming,
    ResumePoint,
    block,
    end,
    resume_point,
    run_error,
    run_event,
)

RUN = "run-1"


def parse(text: str) -> list[dict[str, Any]]:
    """The dispatched events of a text/event-stream (the HTML standard's rules), each as
    {"event", "data", "id"} with `id` the block's own (None if it has none), and "retry"."""
    parsed: list[dict[str, Any]] = []
    event, data, block_id = "message", list[str](), None
    for line in text.split("\n"):
        if line == "":
            if data:
                parsed.append({"event": event, "data": "\n".join(data), "id": block_id})
            event, data, block_id = "message", [], None
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                block_id = value
            elif name == "retry":
                parsed.append({"retry": int(value)})
    return parsed


def frame(index: int) -> str:
    return json.dumps({"event": "StepProgress", "run_id": RUN, "event_index": index})


# --- where a stream starts -------------------------------------------------------------------


def test_the_start_is_after_last_event_id_else_at_from_else_zero() -> None:
    assert resume_point(None, None) == ResumePoint(0, "the start")
    assert resume_point("7", None) == ResumePoint(7, "from=7")
    assert resume_point(None, "7") == ResumePoint(8, "Last-Event-ID 7")
    assert resume_point("3", "20") == ResumePoint(21, "Last-Event-ID 20")  # the header wins
    assert resume_point("3", "") == ResumePoint(3, "from=3")  # empty: as if absent
    assert resume_point("007", "0") == ResumePoint(1, "Last-Event-ID 0")
    assert resume_point(str(MAX_INDEX), None).start == MAX_INDEX


@pytest.mark.parametrize(
    ("from_text", "last_event_id", "named"),
    [
        ("x", None, "from"), ("-1", None, "from"), ("+1", None, "from"), (" 1", None, "from"),
        ("1.0", None, "from"), ("", None, "from"), ("٣", None, "from"),
        (str(MAX_INDEX + 1), None, "from"),
        (None, "x", "Last-Event-ID"), (None, "-1", "Last-Event-ID"), (None, "1e3", "Last-Event-ID"),
        (None, str(MAX_INDEX + 1), "Last-Event-ID"), ("bad", "5", "from"),
    ],
)
def test_a_bad_index_is_refused_naming_what_gave_it(
    from_text: str | None, last_event_id: str | None, named: str
) -> None:
    with pytest.raises(BadResume) as refused:
        resume_point(from_text, last_event_id)
    assert str(refused.value).startswith(f"{named} must be an event index, an integer from 0 to")


def test_a_long_bad_index_is_quoted_in_part() -> None:
    with pytest.raises(BadResume) as refused:
        resume_point("1" * 30 + "x" * 970, None)
    assert str(refused.value).endswith("... (1000 characters)")


# --- blocks ----------------------------------------------------------------------------------


def test_a_run_event_is_its_index_and_its_frame_unchanged() -> None:
    text = frame(4)
    assert run_event(4, text) == f"id: 4\ndata: {text}\n\n"
    assert parse(run_event(4, text)) == [{"event": "message", "data": text, "id": "4"}]


def test_a_value_with_line_breaks_takes_a_line_each_and_parses_back_with_newlines() -> None:
    assert block([("data", "a\r\nb\rc\nd")]) == "data: a\ndata: b\ndata: c\ndata: d\n\n"
    assert parse(block([("data", "a\nb")])) == [{"event": "message", "data": "a\nb", "id": None}]


def test_keep_alive_is_a_comment_and_dispatches_nothing() -> None:
    assert KEEP_ALIVE == ": keep-alive\n\n" and parse(KEEP_ALIVE) == []


def test_end_and_run_error_are_named_events_without_an_id() -> None:
    [ended] = parse(end(RUN, 41))
    assert ended["event"] == "end" and ended["id"] is None
    assert json.loads(ended["data"])["last_event_index"] == 41
    [failed] = parse(run_error(RUN, "run run-1 is lost"))
    assert failed["event"] == "run_error" and failed["id"] is None
    assert failed["data"] == protocol.run_error(RUN, "run run-1 is lost")


# --- the stream of a run ---------------------------------------------------------------------


def stream(framing: EventStreamFraming, count: int, batch_sizes: list[int]) -> str:
    """The opening, then `count` events in batches of `batch_sizes` (then one batch of the
    rest), then the ending."""
    first = framing.start
    frames = [frame(first + i) for i in range(count)]
    text = framing.opening()
    for size in [*batch_sizes, count]:
        batch, frames = frames[:size], frames[size:]
        if batch:
            text += framing.events(batch)
    return text + framing.ending()


def test_a_finished_run_from_0_is_the_websocket_replay_then_its_events_then_end() -> None:
    framing = EventStreamFraming(RUN, RunStatus.COMPLETED, 3, 0)
    parsed = parse(stream(framing, 3, [2]))
    assert parsed[0] == {"retry": 1000}
    assert parsed[1] == {
        "event": "replay", "data": protocol.replay(RUN, RunStatus.COMPLETED, 3), "id": None
    }
    assert [p["id"] for p in parsed[2:5]] == ["0", "1", "2"]
    assert parsed[5]["event"] == "end" and len(parsed) == 6


def test_a_finished_run_from_an_index_names_it_in_replay() -> None:
    framing = EventStreamFraming(RUN, RunStatus.CANCELLED, 10, 7)
    parsed = parse(stream(framing, 3, []))
    replay = json.loads(parsed[1]["data"])
    assert replay["first_event_index"] == 7 and replay["total_events"] == 10
    assert replay["message"] == "Run CANCELLED. Replaying the events from index 7."
    assert [p["id"] for p in parsed[2:5]] == ["7", "8", "9"]
    assert json.loads(parsed[-1]["data"])["last_event_index"] == 9


def test_the_websocket_replay_frame_is_unchanged_from_index_0() -> None:
    assert json.loads(protocol.replay(RUN, RunStatus.ERROR, 5)) == {
        "event": "replay", "run_id": RUN, "status": "ERROR", "total_events": 5,
        "message": "Run ERROR. Replaying all events.",
    }


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=120).flatmap(
        lambda count: st.tuples(
            st.just(count),
            st.integers(min_value=0, max_value=count),  # the start
            st.integers(min_value=1, max_value=40),  # live events, the terminal one last
        )
    ),
    st.lists(st.integers(min_value=1, max_value=50), max_size=12),
)
def test_a_running_run_has_the_websockets_control_events_at_its_places_however_batched(
    case: tuple[int, int, int], batch_sizes: list[int]
) -> None:
    event_count, start, live = case
    missed = event_count - start
    framing = EventStreamFraming(RUN, RunStatus.RUNNING, event_count, start)
    parsed = parse(stream(framing, missed + live, batch_sizes))
    assert parsed[0] == {"retry": 1000}
    names = [p["event"] for p in parsed[1:]]
    expected_controls = ["catch_up"] if missed else []
    assert names == [
        *expected_controls, *["message"] * missed, "subscribed", *["message"] * live, "end"
    ]
    events = [p for p in parsed[1:] if p["event"] == "message"]
    assert [p["id"] for p in events] == [str(i) for i in range(start, event_count + live)]
    assert [p["data"] for p in events] == [frame(i) for i in range(start, event_count + live)]
    controls = [p for p in parsed[1:] if p["event"] != "message"]
    assert all(p["id"] is None for p in controls)
    if missed:
        assert controls[0]["data"] == protocol.catch_up(RUN, missed, event_count)
    assert controls[-2]["data"] == protocol.subscribed(RUN, event_count)
    assert json.loads(controls[-1]["data"])["last_event_index"] == event_count + live - 1
