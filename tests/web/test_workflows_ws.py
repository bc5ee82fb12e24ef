"""The workflow WebSocket protocol of web/workflows_ws.py (+ web/app.py) over a real server.

Every test talks to a real Hypercorn server (the `start_server` fixture) with real trio-websocket
clients. Runs that must still be running while a test reconnects use a workflow whose step waits
on a `trio.Event` the test holds (`gated`), so "running" is a fact, not a timing. The main flows
(a run read to its end, reconnects to running and finished runs, bad input) also run with the
app on stock Hypercorn (`ON_BOTH_TRANSPORTS`), which offers no `send_texts` extension.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from actors import Step, StepContext, Workflow, WorkflowCatalog
from actors.workflows.examples.content_creation import (
    WORKFLOW_ID as DEMO,
)
from actors.workflows.examples.content_creation import (
    WORKFLOW_NAME as DEMO_NAME,
)
from actors.workflows.examples.content_creation import (
    content_creation_workflow,
)
from tests.clients import TERMINAL, JsonSocket, events_only, ws_client
from tests.conftest import FAST_STEP_DELAY, ON_BOTH_TRANSPORTS, RunningServer, StartServer
from tests.raw_websocket import client_text_frame, raw_websocket

DEMO_EVENTS = 42
GATED = "gated"
TICKS = 3
HELD = TICKS + 2  # WorkflowStarted, StepStarted, TICKS x StepProgress: events before the gate
GATED_TOTAL = HELD + 6  # + StepOutput, StepCompleted, StepStarted, StepOutput, StepCompleted, WorkflowCompleted
FAILING = "failing"


@attrs.define
class Gate:
    """Runs of the `gated` workflow emit HELD events, then wait until `release` is set."""

    release: trio.Event = attrs.Factory(trio.Event)


def make_catalog(gate: Gate) -> WorkflowCatalog:
    async def hold(ctx: StepContext) -> str:
        for tick in range(TICKS):
            await ctx.progress(f"tick {tick}")
        await gate.release.wait()
        return "held"

    async def finish(ctx: StepContext) -> str:
        return "finished"

    async def fine(ctx: StepContext) -> str:
        return "fine"

    async def boom(ctx: StepContext) -> str:
        raise RuntimeError("boom in step")

    catalog = WorkflowCatalog()
    catalog.add(content_creation_workflow(FAST_STEP_DELAY))
    catalog.add(Workflow(GATED, "Gated", [Step("hold", hold), Step("finish", finish)]))
    catalog.add(Workflow(FAILING, "Failing", [Step("fine", fine), Step("boom", boom)]))
    return catalog


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def gserver(start_server: StartServer, gate: Gate) -> RunningServer:
    """A server whose catalog has the demo, `gated` and `failing` workflows."""
    return await start_server(catalog=make_catalog(gate))


# -- helpers -------------------------------------------------------------------------------------


def indices(frames: list[dict[str, Any]]) -> list[int]:
    return [f["event_index"] for f in events_only(frames)]


async def recv_until(
    client: JsonSocket, done: Callable[[dict[str, Any]], bool], timeout: float = 20.0
) -> list[dict[str, Any]]:
    """Frames up to and including the first for which `done` is true."""
    frames = []
    with trio.fail_after(timeout):
        while True:
            frame = await client.recv(timeout)
            frames.append(frame)
            if done(frame):
                return frames


async def start_held(client: JsonSocket) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Start a `gated` run and read its events up to the gate; the run then waits there."""
    started = await client.start(GATED)
    assert started["event"] == "WorkflowStarted"
    rest = await recv_until(client, lambda f: f.get("event_index") == HELD - 1)
    return started, [started, *rest]


async def reconnect(client: JsonSocket, run_id: str, **fields: Any) -> None:
    await client.send({"action": "reconnect", "run_id": run_id, **fields})


async def assert_usable(client: JsonSocket) -> None:
    """The socket still answers: ping gets pong as the very next frame."""
    await client.send({"action": "ping"})
    assert await client.recv() == {"event": "pong"}


def by_run(frames: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {}
    for frame in events_only(frames):
        runs.setdefault(frame["run_id"], []).append(frame)
    return runs


# -- connection ----------------------------------------------------------------------------------


async def test_connected_frame_says_no_auth_needed_and_ping_gets_pong(server: RunningServer) -> None:
    async with ws_client(server.ws_url) as client:
        assert client.connected["event"] == "connected"
        assert client.connected["requires_auth"] is False
        assert isinstance(client.connected["message"], str)
        for _ in range(3):
            await assert_usable(client)


async def test_connected_frame_says_auth_needed_with_a_token(start_server: StartServer) -> None:
    srv = await start_server(token="s3cret")
    async with ws_client(srv.ws_url) as client:
        assert client.connected["event"] == "connected"
        assert client.connected["requires_auth"] is True


# -- start-workflow ------------------------------------------------------------------------------


@ON_BOTH_TRANSPORTS
async def test_start_workflow_streams_the_demo_run_with_agno_fields(server: RunningServer) -> None:
    """All 42 events, on the starting socket, from WorkflowStarted (index 0) to WorkflowCompleted,
    each a flat object with the spec's fields and no None values."""
    async with ws_client(server.ws_url) as client:
        started = await client.start(DEMO, message="hello", session_id="sess-1", user_id="u1")
        frames = [started, *await client.recv_until_terminal()]
    assert started["event"] == "WorkflowStarted" and started["event_index"] == 0
    run_id = started["run_id"]
    uuid.UUID(run_id)
    assert [f["event_index"] for f in frames] == list(range(DEMO_EVENTS))
    for frame in frames:
        assert frame["workflow_id"] == DEMO
        assert frame["workflow_name"] == DEMO_NAME
        assert frame["session_id"] == "sess-1"
        assert frame["run_id"] == run_id
        assert frame["nested_depth"] == 0
        assert isinstance(frame["created_at"], int)
        assert None not in frame.values()
    kinds = [f["event"] for f in frames]
    per_step = ["StepStarted", "StepProgress", "StepProgress", "StepOutput", "StepCompleted"]
    assert kinds == ["WorkflowStarted", *per_step * 8, "WorkflowCompleted"]
    steps = [f for f in frames if f["event"] == "StepStarted"]
    assert [s["step_index"] for s in steps] == list(range(8))
    assert steps[0]["step_name"] == "research" and isinstance(steps[0]["step_id"], str)
    for f in frames[1:-1]:
        assert "step_name" in f and "step_index" in f
    progress = [f for f in frames if f["event"] == "StepProgress"]
    assert all(isinstance(p["content"], str) for p in progress)
    outputs = [f for f in frames if f["event"] == "StepOutput"]
    assert all(o["step_output"]["success"] is True for o in outputs)
    assert outputs[0]["step_output"]["step_name"] == "research"
    assert "hello" in outputs[0]["step_output"]["content"]
    completed = frames[-1]
    assert isinstance(completed["content"], str)
    assert "steps" in completed["metrics"] and "duration" in completed["metrics"]


async def test_every_frame_is_a_text_frame_holding_one_json_object(server: RunningServer) -> None:
    async with ws_client(server.ws_url) as client:
        await client.send({"action": "start-workflow", "workflow_id": DEMO})
        raw: list[str | bytes] = []
        with trio.fail_after(20):
            while not raw or json.loads(raw[-1])["event"] not in TERMINAL:
                raw.append(await client.ws.get_message())
        await client.send({"action": "ping"})
        raw.append(await client.ws.get_message())
    assert all(isinstance(r, str) for r in raw)
    assert all(isinstance(json.loads(r), dict) for r in raw)
    assert not any(r.startswith("event:") for r in raw)  # flat JSON, never SSE text
    assert len(raw) == DEMO_EVENTS + 1


async def test_start_workflow_without_session_id_generates_one(server: RunningServer) -> None:
    async with ws_client(server.ws_url) as client:
        first = await client.start(DEMO)
        frames = [first, *await client.recv_until_terminal()]
        second = await client.start(DEMO)
        await client.recv_until_terminal()
    uuid.UUID(first["session_id"])
    assert {f["session_id"] for f in frames} == {first["session_id"]}
    assert second["session_id"] != first["session_id"]
    assert second["run_id"] != first["run_id"]


# -- reconnect to a running run ------------------------------------------------------------------


@ON_BOTH_TRANSPORTS
@pytest.mark.parametrize("last", [0, 1, HELD - 2])
async def test_reconnect_to_running_run_catches_up_then_goes_live(
    gserver: RunningServer, gate: Gate, last: int
) -> None:
    """catch_up, exactly the missed events last+1.., subscribed, then live events to the end."""
    async with ws_client(gserver.ws_url) as starter, ws_client(gserver.ws_url) as follower:
        started, _ = await start_held(starter)
        await reconnect(follower, started["run_id"], last_event_index=last)
        header = await follower.recv()
        missed = HELD - (last + 1)
        assert header == {
            "event": "catch_up",
            "run_id": started["run_id"],
            "status": "running",
            "missed_events": missed,
            "current_event_count": HELD,
            "message": header["message"],
        }
        caught_up = [await follower.recv() for _ in range(missed)]
        assert [f["event_index"] for f in caught_up] == list(range(last + 1, HELD))
        subscribed = await follower.recv()
        assert subscribed["event"] == "subscribed"
        assert subscribed["run_id"] == started["run_id"]
        assert subscribed["status"] == "running"
        assert subscribed["current_event_count"] == HELD
        gate.release.set()
        live = await follower.recv_until_terminal()
        starter_rest = await starter.recv_until_terminal()
    assert [f["event_index"] for f in live] == list(range(HELD, GATED_TOTAL))
    assert live == events_only(live)
    assert live[-1]["event"] == "WorkflowCompleted"
    assert starter_rest == live  # the same bytes for every subscriber


@pytest.mark.parametrize("last", [None, -1, "absent"])
async def test_reconnect_with_null_or_minus_one_replays_from_index_zero(
    gserver: RunningServer, gate: Gate, last: int | None | str
) -> None:
    async with ws_client(gserver.ws_url) as starter, ws_client(gserver.ws_url) as follower:
        started, before_gate = await start_held(starter)
        fields = {} if last == "absent" else {"last_event_index": last}
        await reconnect(follower, started["run_id"], **fields)
        header = await follower.recv()
        assert header["event"] == "catch_up"
        assert header["missed_events"] == HELD and header["current_event_count"] == HELD
        caught_up = [await follower.recv() for _ in range(HELD)]
        assert caught_up == before_gate
        assert (await follower.recv())["event"] == "subscribed"
        gate.release.set()
        live = await follower.recv_until_terminal()
    assert indices(live) == list(range(HELD, GATED_TOTAL)) and len(live) == GATED_TOTAL - HELD


async def test_reconnect_with_nothing_missed_gets_subscribed_then_live(
    gserver: RunningServer, gate: Gate
) -> None:
    async with ws_client(gserver.ws_url) as starter, ws_client(gserver.ws_url) as follower:
        started, _ = await start_held(starter)
        await reconnect(follower, started["run_id"], last_event_index=HELD - 1)
        header = await follower.recv()
        assert header["event"] == "subscribed"
        assert header["current_event_count"] == HELD
        gate.release.set()
        live = await follower.recv_until_terminal()
    assert [f["event_index"] for f in live] == list(range(HELD, GATED_TOTAL))


@pytest.mark.parametrize("last", [HELD, HELD + 1, 10_000])
async def test_reconnect_beyond_the_last_event_is_an_error_and_the_socket_survives(
    gserver: RunningServer, gate: Gate, last: int
) -> None:
    async with ws_client(gserver.ws_url) as starter, ws_client(gserver.ws_url) as follower:
        started, _ = await start_held(starter)
        await reconnect(follower, started["run_id"], last_event_index=last)
        frame = await follower.recv()
        assert frame["event"] == "error"
        assert "last_event_index" in frame["error"] and str(last) in frame["error"]
        assert started["run_id"] in frame["error"]
        await assert_usable(follower)
        # the refused reconnect subscribed to nothing: only the valid one delivers events
        await reconnect(follower, started["run_id"], last_event_index=HELD - 1)
        assert (await follower.recv())["event"] == "subscribed"
        gate.release.set()
        live = await follower.recv_until_terminal()
    assert indices(live) == list(range(HELD, GATED_TOTAL)) and len(live) == GATED_TOTAL - HELD


async def test_a_reconnect_beyond_the_last_event_does_not_disturb_the_run(
    gserver: RunningServer, gate: Gate
) -> None:
    """Bad input changes nothing (guarantee 6): the run goes on and completes normally for the
    socket that started it, instead of ending with a WorkflowError."""
    async with ws_client(gserver.ws_url) as starter, ws_client(gserver.ws_url) as follower:
        started, _ = await start_held(starter)
        await reconnect(follower, started["run_id"], last_event_index=HELD + 3)
        assert (await follower.recv())["event"] == "error"
        gate.release.set()
        rest = await starter.recv_until_terminal()
    assert [f["event"] for f in rest][-1] == "WorkflowCompleted"
    assert [f["event_index"] for f in rest] == list(range(HELD, GATED_TOTAL))


@ON_BOTH_TRANSPORTS
@pytest.mark.parametrize("seed", range(4))
async def test_reconnect_at_random_moments_is_gap_free_and_duplicate_free(
    server: RunningServer, seed: int
) -> None:
    """Reconnects while the demo run emits (or has just finished): whatever the header, the
    follower gets every event from its cursor exactly once, in order, with consistent framing."""
    rng = random.Random(seed)
    for _ in range(5):
        async with ws_client(server.ws_url) as starter, ws_client(server.ws_url) as follower:
            started = await starter.start(DEMO)
            seen = [started]
            for _ in range(rng.randrange(0, DEMO_EVENTS)):
                seen.append(await starter.recv())
            mode = rng.choice(["any", "latest", "after-the-end"])
            if mode == "after-the-end" and seen[-1]["event"] not in TERMINAL:
                seen += await starter.recv_until_terminal()
            last = len(seen) - 1 if mode == "latest" else rng.choice([None, -1, *range(len(seen))])
            await reconnect(follower, started["run_id"], last_event_index=last)
            frames = await follower.recv_until_terminal()
            full = [*seen, *await starter.recv_until_terminal()] if seen[-1]["event"] not in TERMINAL else seen
        assert [f["event_index"] for f in full] == list(range(DEMO_EVENTS))
        header = frames[0]
        cursor = 0 if last is None or last == -1 else last + 1
        if header["event"] == "replay":
            assert header["status"] == "COMPLETED" and header["total_events"] == DEMO_EVENTS
            assert frames[1:] == full
            continue
        if header["event"] == "catch_up":
            missed = header["missed_events"]
            assert missed > 0
            assert header["current_event_count"] == cursor + missed
            assert frames[1 + missed]["event"] == "subscribed"
            assert frames[1 + missed]["current_event_count"] == cursor + missed
            assert [f["event"] for f in frames].count("subscribed") == 1
        else:
            assert header["event"] == "subscribed"
            assert header["current_event_count"] == cursor
        assert events_only(frames) == full[cursor:]
        assert len(frames) - len(events_only(frames)) == (2 if header["event"] == "catch_up" else 1)


# -- reconnect to a finished run -----------------------------------------------------------------


@ON_BOTH_TRANSPORTS
@pytest.mark.parametrize("last", [None, -1, 5, 41, 500])
async def test_reconnect_to_completed_run_replays_everything_and_stays_open(
    server: RunningServer, last: int | None
) -> None:
    async with ws_client(server.ws_url) as client:
        started = await client.start(DEMO)
        full = [started, *await client.recv_until_terminal()]
    async with ws_client(server.ws_url) as client:
        await reconnect(client, started["run_id"], last_event_index=last)
        header = await client.recv()
        assert header["event"] == "replay"
        assert header["run_id"] == started["run_id"]
        assert header["status"] == "COMPLETED"
        assert header["total_events"] == DEMO_EVENTS
        replay = [await client.recv() for _ in range(DEMO_EVENTS)]
        assert replay == full
        await assert_usable(client)
        await client.start(DEMO)  # and still takes commands
        assert indices(await client.recv_until_terminal())[-1] == DEMO_EVENTS - 1


async def test_replay_of_a_failed_run_says_error(gserver: RunningServer) -> None:
    async with ws_client(gserver.ws_url) as client:
        started = await client.start(FAILING)
        full = [started, *await client.recv_until_terminal()]
        await reconnect(client, started["run_id"], last_event_index=2)
        header = await client.recv()
        replay = [await client.recv() for _ in range(len(full))]
        await assert_usable(client)
    assert header["event"] == "replay" and header["status"] == "ERROR"
    assert header["total_events"] == len(full)
    assert replay == full


# -- one socket, several runs --------------------------------------------------------------------


async def test_one_socket_follows_two_runs_at_once(server: RunningServer) -> None:
    async with ws_client(server.ws_url) as client:
        await client.send({"action": "start-workflow", "workflow_id": DEMO, "message": "a"})
        await client.send({"action": "start-workflow", "workflow_id": DEMO, "message": "b"})
        frames: list[dict[str, Any]] = []
        terminals = 0
        with trio.fail_after(20):
            while terminals < 2:
                frame = await client.recv()
                frames.append(frame)
                terminals += frame["event"] in TERMINAL
        await assert_usable(client)
    assert frames == events_only(frames)
    runs = by_run(frames)
    assert len(runs) == 2
    for events in runs.values():
        assert [f["event_index"] for f in events] == list(range(DEMO_EVENTS))
        assert events[-1]["event"] == "WorkflowCompleted"


async def test_one_socket_reconnects_to_two_running_runs(gserver: RunningServer, gate: Gate) -> None:
    async with ws_client(gserver.ws_url) as starter, ws_client(gserver.ws_url) as follower:
        a, _ = await start_held(starter)
        b, _ = await start_held(starter)
        await reconnect(follower, a["run_id"], last_event_index=0)
        await reconnect(follower, b["run_id"], last_event_index=HELD - 1)
        frames: list[dict[str, Any]] = []
        with trio.fail_after(20):
            # both subscriptions stand before the runs go on (else b may finish first: a replay)
            while sum(f["event"] == "subscribed" for f in frames) < 2:
                frames.append(await follower.recv())
            gate.release.set()
            while sum(f["event"] in TERMINAL for f in frames) < 2:
                frames.append(await follower.recv())
    runs = by_run(frames)
    assert [f["event_index"] for f in runs[a["run_id"]]] == list(range(1, GATED_TOTAL))
    assert [f["event_index"] for f in runs[b["run_id"]]] == list(range(HELD, GATED_TOTAL))


@pytest.mark.parametrize("same_socket_started_it", [False, True])
async def test_second_reconnect_on_a_socket_replaces_the_first_subscription(
    gserver: RunningServer, gate: Gate, same_socket_started_it: bool
) -> None:
    """No event is delivered twice after the second reconnect (Agno would double them)."""
    async with ws_client(gserver.ws_url) as starter, ws_client(gserver.ws_url) as other:
        follower = starter if same_socket_started_it else other
        started, _ = await start_held(starter)
        run_id = started["run_id"]
        if not same_socket_started_it:
            await reconnect(follower, run_id, last_event_index=HELD - 1)
            assert (await follower.recv())["event"] == "subscribed"
        await reconnect(follower, run_id, last_event_index=1)
        header = await follower.recv()
        assert header["event"] == "catch_up" and header["missed_events"] == HELD - 2
        caught_up = [await follower.recv() for _ in range(HELD - 2)]
        assert (await follower.recv())["event"] == "subscribed"
        gate.release.set()
        live = await follower.recv_until_terminal()
        await assert_usable(follower)  # nothing else was queued: the next frame is the pong
    assert [f["event_index"] for f in caught_up] == list(range(2, HELD))
    assert live == events_only(live)
    assert [f["event_index"] for f in live] == list(range(HELD, GATED_TOTAL))


# -- cancel-run ----------------------------------------------------------------------------------


async def test_cancel_run_ends_a_running_run_for_all_its_followers(
    gserver: RunningServer, gate: Gate
) -> None:
    async with (
        ws_client(gserver.ws_url) as starter,
        ws_client(gserver.ws_url) as follower,
        ws_client(gserver.ws_url) as canceller,
    ):
        started, _ = await start_held(starter)
        run_id = started["run_id"]
        await reconnect(follower, run_id, last_event_index=HELD - 1)
        assert (await follower.recv())["event"] == "subscribed"
        await canceller.send({"action": "cancel-run", "run_id": run_id, "reason": "enough"})
        answer = await canceller.recv()
        assert answer["event"] == "cancel_requested" and answer["run_id"] == run_id
        starter_end = await starter.recv_until_terminal()
        follower_end = await follower.recv_until_terminal()
        for end in (starter_end, follower_end):
            assert [f["event"] for f in end] == ["WorkflowCancelled", "WorkflowCompleted"]
            assert [f["event_index"] for f in end] == [HELD, HELD + 1]
            assert end[0]["reason"] == "enough"
        await reconnect(canceller, run_id)
        header = await canceller.recv()
        assert header["event"] == "replay" and header["status"] == "CANCELLED"
        assert header["total_events"] == HELD + 2
        assert events_only(await canceller.recv_until_terminal())[-2:] == follower_end
        await canceller.send({"action": "cancel-run", "run_id": run_id})
        again = await canceller.recv()
        assert again["event"] == "error" and run_id in again["error"] and "finished" in again["error"]
        await assert_usable(canceller)


async def test_cancel_run_from_the_starting_socket(gserver: RunningServer) -> None:
    async with ws_client(gserver.ws_url) as client:
        started, _ = await start_held(client)
        await client.send({"action": "cancel-run", "run_id": started["run_id"]})
        frames = await client.recv_until_terminal()
    assert {f["event"] for f in frames} == {"cancel_requested", "WorkflowCancelled", "WorkflowCompleted"}
    assert indices(frames) == [HELD, HELD + 1]


async def test_cancel_of_a_completed_run_is_an_error(server: RunningServer) -> None:
    async with ws_client(server.ws_url) as client:
        started = await client.start(DEMO)
        await client.recv_until_terminal()
        await client.send({"action": "cancel-run", "run_id": started["run_id"]})
        frame = await client.recv()
        assert frame["event"] == "error"
        assert started["run_id"] in frame["error"] and "COMPLETED" in frame["error"]
        await assert_usable(client)


async def test_cancel_of_an_unknown_run_is_an_error(server: RunningServer) -> None:
    async with ws_client(server.ws_url) as client:
        await client.send({"action": "cancel-run", "run_id": "no-such-run"})
        assert await client.recv() == {"event": "error", "error": "Run no-such-run not found"}
        await assert_usable(client)


# -- bad input -----------------------------------------------------------------------------------

KNOWN_ACTIONS = "start-workflow, reconnect, ping, authenticate, cancel-run"
INDEX_RANGE = "last_event_index is out of range: it must be an integer from -1 to 9223372036854775807"
BAD_FRAMES: list[tuple[str | bytes, str]] = [
    ("{not json", "Invalid JSON"),
    (b'{"action": "ping"}', "Binary frames are not supported"),
    ("[1, 2]", "got array"),
    ("42", "got integer"),
    ('"ping"', "got string"),
    ("{}", f"action is required: one of {KNOWN_ACTIONS}"),
    ('{"action": "frobnicate"}', f"Unknown action: frobnicate (the actions are {KNOWN_ACTIONS})"),
    ('{"action": 7}', f"action must be one of {KNOWN_ACTIONS}, got integer"),
    ('{"action": "start-workflow"}', "workflow_id is required"),
    ('{"action": "start-workflow", "workflow_id": "nope"}', "Workflow nope not found"),
    ('{"action": "start-workflow", "workflow_id": 12}', "workflow_id must be a string, got integer"),
    ('{"action": "start-workflow", "workflow_id": "%s", "message": 5}' % DEMO, "message must be a string"),
    ('{"action": "start-workflow", "workflow_id": "%s", "foo": 1}' % DEMO, "unknown field for start-workflow: foo"),
    ('{"action": "reconnect"}', "run_id is required"),
    ('{"action": "reconnect", "last_event_index": 3}', "run_id is required"),
    ('{"action": "reconnect", "run_id": "does-not-exist"}', "Run does-not-exist not found"),
    ('{"action": "reconnect", "run_id": "x", "last_event_index": "5"}', "last_event_index must be an integer, got string"),
    ('{"action": "reconnect", "run_id": "x", "last_event_index": true}', "last_event_index must be an integer, got boolean"),
    ('{"action": "reconnect", "run_id": "x", "last_event_index": 1.5}', "last_event_index must be an integer"),
    ('{"action": "reconnect", "run_id": "x", "last_event_index": %d}' % 10**30, f"{INDEX_RANGE}, got 1e+30"),
    ('{"action": "reconnect", "run_id": "x", "last_event_index": %d}' % (2**64 - 1), f"{INDEX_RANGE}, got {2**64 - 1}"),
    ('{"action": "reconnect", "run_id": "x", "last_event_index": -2}', f"{INDEX_RANGE}, got -2"),
    ('{"action": "reconnect", "run_id": 3}', "run_id must be a string"),
    ('{"action": "reconnect", "run_id": "x", "bogus": 1}', "unknown field for reconnect: bogus"),
    ('{"action": "ping", "extra": true}', "unknown field for ping: extra"),
    ('{"action": "cancel-run"}', "run_id is required"),
]


@pytest.mark.parametrize(("frame", "message"), BAD_FRAMES, ids=[repr(f)[:40] for f, _ in BAD_FRAMES])
async def test_bad_input_gets_an_error_frame_and_the_socket_stays_usable(
    server: RunningServer, frame: str | bytes, message: str
) -> None:
    async with ws_client(server.ws_url) as client:
        await client.send(frame)
        answer = await client.recv()
        assert answer["event"] == "error"
        assert message in answer["error"]
        await assert_usable(client)
        started = await client.start(DEMO)
        assert started["event"] == "WorkflowStarted"
        assert indices(await client.recv_until_terminal()) == list(range(1, DEMO_EVENTS))


@ON_BOTH_TRANSPORTS
async def test_every_bad_input_in_a_row_on_one_socket(server: RunningServer) -> None:
    """One socket, all the bad frames back to back: one error each, in order, then still usable."""
    async with ws_client(server.ws_url) as client:
        for frame, _ in BAD_FRAMES:
            await client.send(frame)
        answers = [await client.recv() for _ in BAD_FRAMES]
        await assert_usable(client)
    assert [a["event"] for a in answers] == ["error"] * len(BAD_FRAMES)
    for answer, (_, message) in zip(answers, BAD_FRAMES, strict=True):
        assert message in answer["error"]


LONG = 900_000  # characters of one value: the frame stays under --max-message-size (1 MiB)
MANY_FIELDS = {f"field{i:05}": 1 for i in range(20_000)}
MANY_NAMES = ", ".join(MANY_FIELDS)
LONG_INPUT: list[tuple[str, dict[str, Any], str]] = [
    ("workflow_id", {"action": "start-workflow", "workflow_id": "w" * LONG},
     f"Workflow {'w' * 200}… ({LONG} characters) not found"),
    ("action", {"action": "a" * LONG},
     f"Unknown action: {'a' * 200}… ({LONG} characters) (the actions are {KNOWN_ACTIONS})"),
    ("reconnect run_id", {"action": "reconnect", "run_id": "r" * LONG},
     f"Run {'r' * 200}… ({LONG} characters) not found"),
    ("cancel-run run_id", {"action": "cancel-run", "run_id": "r" * LONG},
     f"Run {'r' * 200}… ({LONG} characters) not found"),
    ("field name", {"action": "ping", "f" * LONG: 1},
     f"unknown field for ping: {'f' * 200}… ({LONG} characters)"),
    ("20,000 field names", {"action": "ping", **MANY_FIELDS},
     f"unknown fields for ping: {MANY_NAMES[:200]}… ({len(MANY_NAMES)} characters)"),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in LONG_INPUT], ids=[c[0] for c in LONG_INPUT]
)
async def test_an_error_frame_quotes_at_most_200_characters_of_the_input(
    server: RunningServer, body: dict[str, Any], expected: str
) -> None:
    async with ws_client(server.ws_url) as client:
        await client.send(body)
        answer = await client.recv()
        await assert_usable(client)
    assert answer == {"event": "error", "error": expected}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (client_text_frame(b'{"action": "ping", "x": "\xff\xfe"}'), 1007),
        (client_text_frame(b"\xed\xa0\x80"), 1007),  # an encoded UTF-16 surrogate is not UTF-8
        (client_text_frame(b'{"action": "ping"}', masked=False), 1002),
    ],
    ids=["invalid UTF-8", "encoded surrogate", "unmasked frame"],
)
async def test_a_frame_the_protocol_forbids_closes_with_its_code_and_the_server_serves_on(
    server: RunningServer, frame: bytes, code: int
) -> None:
    """RFC 6455 §8.1: invalid UTF-8 in a text message fails the connection with 1007 (any other
    protocol error with 1002), with a Close frame the client can read, not a dropped connection."""
    async with ws_client(server.ws_url) as bystander:
        async with raw_websocket(server.ws_url) as raw:
            assert json.loads(await raw.receive_text())["event"] == "connected"
            await raw.send_raw(frame)
            with trio.fail_after(10):
                assert await raw.close_code() == code
        await assert_usable(bystander)
    async with ws_client(server.ws_url) as newcomer:
        await assert_usable(newcomer)


async def test_negative_last_event_index_below_minus_one_is_refused(
    gserver: RunningServer, gate: Gate
) -> None:
    async with ws_client(gserver.ws_url) as client:
        started, _ = await start_held(client)
        await reconnect(client, started["run_id"], last_event_index=-2)
        frame = await client.recv()
        assert frame["event"] == "error" and "last_event_index" in frame["error"]
        await assert_usable(client)
        gate.release.set()
        assert indices(await client.recv_until_terminal()) == list(range(HELD, GATED_TOTAL))


async def test_an_oversized_frame_closes_with_1009_and_the_server_serves_on(
    start_server: StartServer,
) -> None:
    srv = await start_server(max_message_size=1024)
    async with ws_client(srv.ws_url) as bystander:
        async with ws_client(srv.ws_url) as client:
            await client.send(json.dumps({"action": "ping", "pad": "x" * 4096}))
            with trio.fail_after(10), pytest.raises(ConnectionClosed) as closed:
                while True:
                    await client.ws.get_message()
            assert closed.value.reason.code == 1009
        await assert_usable(bystander)
        started = await bystander.start(DEMO)
        assert indices([started, *await bystander.recv_until_terminal()]) == list(range(DEMO_EVENTS))
    async with ws_client(srv.ws_url) as newcomer:
        await assert_usable(newcomer)


# -- authentication ------------------------------------------------------------------------------


async def test_commands_need_authentication_when_a_token_is_set(start_server: StartServer) -> None:
    srv = await start_server(token="s3cret")
    async with ws_client(srv.ws_url) as client:
        for command in (
            {"action": "start-workflow", "workflow_id": DEMO},
            {"action": "reconnect", "run_id": "x"},
            {"action": "cancel-run", "run_id": "x"},
        ):
            await client.send(command)
            frame = await client.recv()
            assert frame["event"] == "auth_error", command
            assert isinstance(frame["error"], str) and frame["error"]
        await client.send({"action": "authenticate"})
        assert await client.recv() == {"event": "auth_error", "error": "Token is required"}
        await client.send({"action": "authenticate", "token": ""})
        assert await client.recv() == {"event": "auth_error", "error": "Token is required"}
        await client.send({"action": "authenticate", "token": "wrong"})
        assert await client.recv() == {"event": "auth_error", "error": "Invalid token"}
        await client.send({"action": "start-workflow", "workflow_id": DEMO})
        assert (await client.recv())["event"] == "auth_error"  # still not authenticated
        await client.send({"action": "authenticate", "token": "s3cret"})
        assert (await client.recv())["event"] == "authenticated"
        started = await client.start(DEMO)
        assert started["event"] == "WorkflowStarted"
        assert indices(await client.recv_until_terminal()) == list(range(1, DEMO_EVENTS))
        await assert_usable(client)


async def test_the_fifth_failed_authenticate_gets_its_auth_error_then_a_close_with_1008(
    start_server: StartServer,
) -> None:
    """Failed `authenticate`s (no token, an empty one, wrong ones) are counted; commands refused
    for want of authentication are not. The socket stays usable up to the fifth failure, which
    closes it; another socket still authenticates. The token is not ASCII: tokens are compared
    as bytes (`hmac.compare_digest` takes no str outside ASCII)."""
    token = "s3cret-é"
    srv = await start_server(token=token)
    failures = [{}, {"token": ""}, {"token": "wrong"}, {"token": "s3cret-è"}, {"token": "s3cret-"}]
    async with ws_client(srv.ws_url) as client:
        for count, fields in enumerate(failures, start=1):
            await client.send({"action": "start-workflow", "workflow_id": DEMO})
            assert (await client.recv())["event"] == "auth_error"
            await client.send({"action": "authenticate", **fields})
            answer = await client.recv()
            assert answer["event"] == "auth_error", answer
            if count < len(failures):
                await assert_usable(client)
        with trio.fail_after(10), pytest.raises(ConnectionClosed) as closed:
            await client.ws.get_message()
    assert closed.value.reason.code == 1008
    assert closed.value.reason.reason == "too many failed authentications"
    async with ws_client(srv.ws_url) as client:
        await client.send({"action": "authenticate", "token": token})
        assert (await client.recv())["event"] == "authenticated"
        await assert_usable(client)


async def test_no_run_is_started_by_an_unauthenticated_command(start_server: StartServer) -> None:
    """Refused commands change nothing: the run list stays empty."""
    srv = await start_server(token="s3cret")
    async with ws_client(srv.ws_url) as client:
        await client.send({"action": "start-workflow", "workflow_id": DEMO})
        assert (await client.recv())["event"] == "auth_error"
    async with httpx.AsyncClient(base_url=srv.base_url) as http:
        answer = await http.get("/runs", headers={"Authorization": "Bearer s3cret"})
    assert answer.json() == {"runs": [], "next": None}


@pytest.mark.parametrize(
    ("header", "authenticated"),
    [(b"Bearer s3cret", True), (b"Bearer wrong", False), (b"s3cret", False)],
)
async def test_bearer_header_at_the_handshake_authenticates(
    start_server: StartServer, header: bytes, authenticated: bool
) -> None:
    srv = await start_server(token="s3cret")
    async with open_websocket_url(srv.ws_url, extra_headers=[(b"authorization", header)]) as ws:
        client = JsonSocket(ws, json.loads(await ws.get_message()))
        await client.send({"action": "start-workflow", "workflow_id": DEMO})
        frame = await client.recv()
        if authenticated:
            assert frame["event"] == "WorkflowStarted"
            assert indices(await client.recv_until_terminal()) == list(range(1, DEMO_EVENTS))
        else:
            assert frame["event"] == "auth_error"
        await assert_usable(client)


# -- a failing run ---------------------------------------------------------------------------------


async def test_a_raising_step_ends_its_run_with_step_error_then_workflow_error(
    gserver: RunningServer, gate: Gate
) -> None:
    """Crash isolation seen from clients: the failing run ends with StepError + WorkflowError;
    a run held on another socket meanwhile goes on and completes normally."""
    async with ws_client(gserver.ws_url) as healthy, ws_client(gserver.ws_url) as failing:
        held, _ = await start_held(healthy)
        started = await failing.start(FAILING)
        frames = [started, *await failing.recv_until_terminal()]
        await assert_usable(failing)
        gate.release.set()
        rest = await healthy.recv_until_terminal()
        demo = await healthy.start(DEMO)
        demo_rest = await healthy.recv_until_terminal()
    assert [f["event"] for f in frames] == [
        "WorkflowStarted",
        "StepStarted", "StepOutput", "StepCompleted",
        "StepStarted", "StepError", "WorkflowError",
    ]
    assert [f["event_index"] for f in frames] == list(range(7))
    assert frames[5]["step_name"] == "boom" and "boom in step" in frames[5]["error"]
    assert "boom in step" in frames[6]["error"]
    assert [f["event_index"] for f in rest] == list(range(HELD, GATED_TOTAL))
    assert rest[-1]["event"] == "WorkflowCompleted" and rest[-1]["run_id"] == held["run_id"]
    assert indices([demo, *demo_rest]) == list(range(DEMO_EVENTS))


async def test_a_demo_run_on_another_socket_completes_beside_a_failing_run(
    gserver: RunningServer,
) -> None:
    async with ws_client(gserver.ws_url) as a, ws_client(gserver.ws_url) as b:
        demo = await a.start(DEMO)
        failed = await b.start(FAILING)
        failed_frames = await b.recv_until_terminal()
        demo_frames = [demo, *await a.recv_until_terminal()]
    assert failed_frames[-1]["event"] == "WorkflowError" and failed["event_index"] == 0
    assert [f["event_index"] for f in demo_frames] == list(range(DEMO_EVENTS))
    assert demo_frames[-1]["event"] == "WorkflowCompleted"
