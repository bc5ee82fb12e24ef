"""GET /runs/{run_id}/events (web/sse.py, web/sse_framing.py) on a real server, read with httpx
as a stream and parsed by a small text/event-stream parser: every event once, in order, its
data the WebSocket's frame byte for byte; resumes with Last-Event-ID and ?from=; the end of a
run, keep-alive comments, errors, the token, a client that leaves, a server that shuts down."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio

from actors import Step, StepContext, Workflow, WorkflowCatalog
from tests.clients import ws_client
from tests.conftest import RunningServer, StartServer
from tests.web.test_metrics import scrape
from web.shutdown import PUMP_FLUSH_TIMEOUT

DEMO = "content-creation-workflow"
DEMO_EVENTS = 42
TERMINAL = ("WorkflowCompleted", "WorkflowError")


# -- a text/event-stream parser (the HTML standard's, keeping each block's own id) ----------------


@attrs.frozen
class Event:
    event: str  # "message" unless the block names one
    data: str
    id: str | None  # the block's own `id` field, None if it has none

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.data)
        return parsed


@attrs.frozen
class Comment:
    text: str


@attrs.frozen
class Retry:
    milliseconds: int


Item = Event | Comment | Retry


async def items(response: httpx.Response) -> AsyncIterator[Item]:
    """The stream's events, comments and retry fields, in order, until the response ends."""
    event, data, block_id = "message", list[str](), None
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Event(event, "\n".join(data), block_id)
            event, data, block_id = "message", [], None
        elif line.startswith(":"):
            yield Comment(line[1:].removeprefix(" "))
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                block_id = value
            elif name == "retry":
                yield Retry(int(value))
            else:
                raise AssertionError(f"a field the server never sends: {line!r}")


@asynccontextmanager
async def open_stream(
    base_url: str, run_id: str, *, query: str = "", headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.Response]:
    """A stream of the run; leaving the block closes the connection (the client leaves)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        async with http.stream("GET", f"/runs/{run_id}/events{query}", headers=headers) as answer:
            yield answer


async def read_all(base_url: str, run_id: str, **options: Any) -> list[Item]:
    """The whole stream, until the server ends the response."""
    with trio.fail_after(30):
        async with open_stream(base_url, run_id, **options) as answer:
            assert answer.status_code == 200, await answer.aread()
            return [item async for item in items(answer)]


def run_events(stream: list[Item]) -> list[Event]:
    return [item for item in stream if isinstance(item, Event) and item.event == "message"]


def named(stream: list[Item]) -> list[Event]:
    return [item for item in stream if isinstance(item, Event) and item.event != "message"]


async def start_run(server: RunningServer, workflow_id: str = DEMO) -> str:
    async with ws_client(server.ws_url) as client:
        started = await client.start(workflow_id)
    return str(started["run_id"])


async def websocket_replay(server: RunningServer, run_id: str) -> list[str]:
    """The finished run's events over the WebSocket, as the text of each frame."""
    async with ws_client(server.ws_url) as client:
        await client.send({"action": "reconnect", "run_id": run_id, "last_event_index": None})
        with trio.fail_after(10):
            assert orjson.loads(await client.ws.get_message())["event"] == "replay"
            frames = [str(await client.ws.get_message())]
            while orjson.loads(frames[-1])["event"] not in TERMINAL:
                frames.append(str(await client.ws.get_message()))
    return frames


async def wait_finished(server: RunningServer, run_id: str) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        with trio.fail_after(20):
            while (await http.get(f"/runs/{run_id}")).json()["status"] == "RUNNING":
                await trio.sleep(0.02)


def assert_ends_with_end(stream: list[Item], run_id: str, last_index: int) -> None:
    final = stream[-1]
    assert isinstance(final, Event) and final.event == "end" and final.id is None
    assert final.json["run_id"] == run_id and final.json["last_event_index"] == last_index


# -- a run, whole ----------------------------------------------------------------------------------


async def test_a_live_run_streams_every_event_as_the_websocket_sends_it(
    start_server: StartServer,
) -> None:
    server = await start_server(demo_step_delay=0.05)
    run_id = await start_run(server)
    stream = await read_all(server.base_url, run_id)

    assert stream[0] == Retry(1000)
    events = run_events(stream)
    assert [e.id for e in events] == [str(i) for i in range(DEMO_EVENTS)]
    assert events[-1].json["event"] == "WorkflowCompleted"
    assert [e.data for e in events] == await websocket_replay(server, run_id)
    assert_ends_with_end(stream, run_id, DEMO_EVENTS - 1)

    # the control events are the WebSocket's, at its places, and carry no id
    controls = named(stream)
    assert all(c.id is None for c in controls)
    if controls[0].event == "catch_up":
        missed = controls[0].json["missed_events"]
        assert [c.event for c in controls] == ["catch_up", "subscribed", "end"]
        subscribed_at = stream.index(controls[1])
        assert run_events(stream[:subscribed_at]) == events[:missed]
    else:
        assert [c.event for c in controls] == ["subscribed", "end"]
        assert stream[1] == controls[0]


async def test_a_finished_run_replays_in_full_then_the_stream_ends(server: RunningServer) -> None:
    run_id = await start_run(server)
    await wait_finished(server, run_id)
    async with open_stream(server.base_url, run_id) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/event-stream"
        assert answer.headers["cache-control"] == "no-cache"
        with trio.fail_after(10):
            stream = [item async for item in items(answer)]
    replay = stream[1]
    assert isinstance(replay, Event) and replay.event == "replay" and replay.id is None
    assert replay.json == {
        "event": "replay",
        "run_id": run_id,
        "status": "COMPLETED",
        "total_events": DEMO_EVENTS,
        "message": "Run COMPLETED. Replaying all events.",
    }
    assert [e.data for e in run_events(stream)] == await websocket_replay(server, run_id)
    assert [e.id for e in run_events(stream)] == [str(i) for i in range(DEMO_EVENTS)]
    assert stream[2:-1] == run_events(stream)
    assert_ends_with_end(stream, run_id, DEMO_EVENTS - 1)


async def test_from_starts_at_that_index_and_last_event_id_wins_over_it(
    server: RunningServer,
) -> None:
    run_id = await start_run(server)
    await wait_finished(server, run_id)
    frames = await websocket_replay(server, run_id)

    stream = await read_all(server.base_url, run_id, query="?from=10")
    assert [e.id for e in run_events(stream)] == [str(i) for i in range(10, DEMO_EVENTS)]
    assert [e.data for e in run_events(stream)] == frames[10:]
    replay = named(stream)[0]
    assert replay.event == "replay" and replay.json["first_event_index"] == 10
    assert replay.json["total_events"] == DEMO_EVENTS

    both = await read_all(
        server.base_url, run_id, query="?from=3", headers={"Last-Event-ID": "20"}
    )
    assert [e.data for e in run_events(both)] == frames[21:]

    empty_header = await read_all(
        server.base_url, run_id, query="?from=40", headers={"Last-Event-ID": ""}
    )
    assert [e.data for e in run_events(empty_header)] == frames[40:]


async def test_from_on_a_live_run_catches_up_from_there(start_server: StartServer) -> None:
    server = await start_server(demo_step_delay=0.05)
    run_id = await start_run(server)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        with trio.fail_after(10):
            while (await http.get(f"/runs/{run_id}")).json()["event_count"] < 8:
                await trio.sleep(0.01)
    stream = await read_all(server.base_url, run_id, query="?from=5")
    assert [e.id for e in run_events(stream)] == [str(i) for i in range(5, DEMO_EVENTS)]
    assert [e.data for e in run_events(stream)] == (await websocket_replay(server, run_id))[5:]


# -- disconnects and resumes -----------------------------------------------------------------------


async def test_a_client_cut_off_at_random_points_resumes_with_last_event_id_exactly(
    start_server: StartServer,
) -> None:
    """Each run is read in pieces: a random number of events, then the client closes its
    stream, sometimes waits, and comes back with the last id it saw, until `end`, or until
    204 when it left between the terminal event and `end`."""
    server = await start_server(demo_step_delay=0.03)
    rng = random.Random(15)
    for _ in range(6):
        run_id = await start_run(server)
        seen: list[Event] = []
        openings: list[Event] = []  # each stream's first named event
        ends = 0
        with trio.fail_after(30):
            while not ends:
                headers = {"Last-Event-ID": str(seen[-1].id)} if seen else {}
                cut_after = rng.randint(1, 12)
                async with open_stream(server.base_url, run_id, headers=headers) as answer:
                    if answer.status_code == 204:  # left after the terminal event, before `end`
                        assert seen[-1].json["event"] in TERMINAL
                        break
                    assert answer.status_code == 200
                    resumed_at, taken = len(seen), 0
                    async for item in items(answer):
                        if isinstance(item, Event) and item.event == "message":
                            seen.append(item)
                            taken += 1
                            if taken == cut_after:
                                break
                        elif isinstance(item, Event) and item.event == "end":
                            ends += 1
                        elif isinstance(item, Event) and len(seen) == resumed_at:
                            openings.append(item)
                            if item.event == "replay" and resumed_at:
                                assert item.json["first_event_index"] == resumed_at
                await trio.sleep(rng.choice([0, 0, 0.01, 0.05, 0.2]))
        assert [e.id for e in seen] == [str(i) for i in range(DEMO_EVENTS)]
        assert [e.data for e in seen] == await websocket_replay(server, run_id)
        assert {o.event for o in openings} <= {"catch_up", "subscribed", "replay"}
        assert ends <= 1


async def test_after_the_end_a_resume_gets_204_and_beyond_it_422(server: RunningServer) -> None:
    run_id = await start_run(server)
    await wait_finished(server, run_id)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        after_end = await http.get(
            f"/runs/{run_id}/events", headers={"Last-Event-ID": str(DEMO_EVENTS - 1)}
        )
        assert after_end.status_code == 204 and after_end.content == b""
        assert (await http.get(f"/runs/{run_id}/events?from={DEMO_EVENTS}")).status_code == 204
        beyond = await http.get(f"/runs/{run_id}/events?from={DEMO_EVENTS + 1}")
        assert beyond.status_code == 422
        assert beyond.json()["detail"] == (
            f"from={DEMO_EVENTS + 1}: last_event_index {DEMO_EVENTS} is beyond the last event of"
            f" run {run_id} (it has {DEMO_EVENTS} events, indices 0..{DEMO_EVENTS - 1})"
        )


# -- a held run: keep-alive, the index beyond its events, a client that leaves ---------------------

HELD = "held"
BACKLOG = 2500  # progress events before the gate: three pages of a catch-up


@attrs.define
class Gate:
    """The held workflow's gate: `tick` has it emit one more event; `open` ends it."""

    ticks_in: trio.MemorySendChannel[None]
    ticks: trio.MemoryReceiveChannel[None]
    opened: trio.Event = attrs.Factory(trio.Event)

    def catalog(self, backlog: int) -> WorkflowCatalog:
        async def hold(ctx: StepContext) -> str:
            for tick in range(backlog):
                await ctx.progress(f"tick {tick}")
            while not self.opened.is_set():
                with trio.move_on_after(0.01):
                    await self.ticks.receive()
                    await ctx.progress("one more")
            return "opened"

        catalog = WorkflowCatalog()
        catalog.add(Workflow(HELD, "Held", [Step("hold", hold)], description="waits for the test"))
        return catalog


@pytest.fixture
def gate() -> Gate:
    return Gate(*trio.open_memory_channel[None](100))


async def held_run(server: RunningServer, events: int) -> str:
    """A run of the held workflow, once it holds `events` events."""
    run_id = await start_run(server, HELD)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        with trio.fail_after(20):
            while (await http.get(f"/runs/{run_id}")).json()["event_count"] < events:
                await trio.sleep(0.01)
    return run_id


async def test_keep_alive_comments_while_nothing_is_sent(
    start_server: StartServer, gate: Gate
) -> None:
    server = await start_server(catalog=gate.catalog(2), sse_keep_alive=0.1)
    run_id = await held_run(server, 4)
    with trio.fail_after(20):
        async with open_stream(server.base_url, run_id) as answer:
            stream = aiter(items(answer))
            head = [await anext(stream) for _ in range(7)]  # retry, catch_up, 4 events
            assert [type(i) for i in head] == [Retry] + [Event] * 6
            assert [i.event for i in head if isinstance(i, Event)][-1] == "subscribed"
            assert [await anext(stream) for _ in range(3)] == [Comment("keep-alive")] * 3
            gate.opened.set()
            rest = [item async for item in stream]
    assert [e.json["event"] for e in run_events(rest)][-1] == "WorkflowCompleted"
    assert [e.id for e in run_events(rest)] == [str(4 + i) for i in range(len(run_events(rest)))]


async def test_the_default_keep_alive_is_quiet_for_a_while(
    start_server: StartServer, gate: Gate
) -> None:
    server = await start_server(catalog=gate.catalog(2))
    run_id = await held_run(server, 4)
    with trio.fail_after(20):
        async with open_stream(server.base_url, run_id) as answer:
            stream = aiter(items(answer))
            for _ in range(7):
                await anext(stream)
            with trio.move_on_after(0.5) as quiet:
                await anext(stream)
            assert quiet.cancelled_caught
    gate.opened.set()


async def test_an_index_beyond_a_live_run_is_the_websocket_error(
    start_server: StartServer, gate: Gate
) -> None:
    server = await start_server(catalog=gate.catalog(2))
    run_id = await held_run(server, 4)
    async with ws_client(server.ws_url) as client:
        await client.send({"action": "reconnect", "run_id": run_id, "last_event_index": 9})
        websocket_error = (await client.recv())["error"]
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        by_header = await http.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": "9"})
        by_query = await http.get(f"/runs/{run_id}/events?from=10")
        at_the_end = await http.head(f"/runs/{run_id}/events?from=4")
    assert by_header.status_code == 422
    assert by_header.json()["detail"] == f"Last-Event-ID 9: {websocket_error}"
    assert by_query.status_code == 422
    assert by_query.json()["detail"] == f"from=10: {websocket_error}"
    assert at_the_end.status_code == 200  # a running run is followed from its event count
    assert at_the_end.headers["content-type"] == "text/event-stream"
    gate.opened.set()


async def test_a_client_that_leaves_during_a_catch_up_leaves_no_subscription(
    start_server: StartServer, gate: Gate
) -> None:
    """The client reads the first event of a catch-up of three pages and closes: the stream,
    cancelled while it hands over the second page, closes its feed, which the run drops at its
    next event (a feed left open would take it)."""
    server = await start_server(catalog=gate.catalog(BACKLOG))
    run_id = await held_run(server, BACKLOG + 2)
    with trio.fail_after(20):
        async with open_stream(server.base_url, run_id) as answer:
            async for item in items(answer):
                if isinstance(item, Event) and item.event == "message":
                    break
            during = await scrape(server.base_url)
        for _ in range(100):  # far fewer events than fill a feed (which the run then drops)
            await gate.ticks_in.send(None)
            await trio.sleep(0.02)
            after = await scrape(server.base_url)
            if after["runcast_live_subscribers"] == 0:
                break
    assert during["runcast_live_subscribers"] == 1
    assert after["runcast_live_subscribers"] == 0
    gate.opened.set()


# -- bad requests, the token -----------------------------------------------------------------------


async def test_an_unknown_run_is_404(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get("/runs/nope/events")
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Run nope not found"}


@pytest.mark.parametrize(
    ("query", "headers", "named"),
    [
        ("?from=abc", {}, "from must be an event index, an integer from 0 to 9223372036854775807"
         " in digits 0-9, got 'abc'"),
        ("?from=-1", {}, "from must be an event index"),
        ("?from=1e3", {}, "from must be an event index"),
        ("?from=%EF%BC%93", {}, "from must be an event index"),  # a full-width digit
        (f"?from={2**63}", {}, "from must be an event index"),
        ("?from=1&from=2", {}, "from must be given at most once, got 2 values"),
        ("", {"Last-Event-ID": "x"}, "Last-Event-ID must be an event index, an integer from 0"),
        ("", {"Last-Event-ID": "-1"}, "Last-Event-ID must be an event index"),
        ("?from=2", {"Last-Event-ID": "4.0"}, "Last-Event-ID must be an event index"),
        ("?from=z", {"Last-Event-ID": "4"}, "from must be an event index"),
    ],
)
async def test_a_bad_from_or_last_event_id_is_422_naming_it(
    server: RunningServer, query: str, headers: dict[str, str], named: str
) -> None:
    run_id = await start_run(server)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get(f"/runs/{run_id}/events{query}", headers=headers)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(named)


async def test_a_long_bad_value_is_quoted_in_part(server: RunningServer) -> None:
    run_id = await start_run(server)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get(f"/runs/{run_id}/events?from={'9' * 5000}")
    assert answer.status_code == 422
    assert answer.json()["detail"].endswith("... (5000 characters)")


async def test_with_a_token_the_stream_needs_the_bearer_header(start_server: StartServer) -> None:
    server = await start_server(token="s3cret")
    async with ws_client(server.ws_url) as client:
        await client.send({"action": "authenticate", "token": "s3cret"})
        await client.recv()
        started = await client.start(DEMO)
    run_id = started["run_id"]
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        bare = await http.get(f"/runs/{run_id}/events")
        in_the_url = await http.get(f"/runs/{run_id}/events?token=s3cret")
        wrong = await http.get(f"/runs/{run_id}/events", headers={"Authorization": "Bearer no"})
    for refused in (bare, in_the_url, wrong):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json() == {"detail": "Authorization: Bearer <token> is required"}
    stream = await read_all(
        server.base_url, run_id, headers={"Authorization": "Bearer s3cret"}
    )
    assert [e.id for e in run_events(stream)] == [str(i) for i in range(DEMO_EVENTS)]


# -- shutdown --------------------------------------------------------------------------------------


async def test_a_shutdown_ends_the_stream_after_the_runs_last_events(
    start_server: StartServer,
) -> None:
    server = await start_server(demo_step_delay=0.5)
    run_id = await start_run(server)
    with trio.fail_after(15):
        async with open_stream(server.base_url, run_id) as answer:
            stream = aiter(items(answer))
            while not (isinstance(item := await anext(stream), Event) and item.id == "3"):
                pass
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.stop)
                started = trio.current_time()
                rest = [item async for item in stream]
                took = trio.current_time() - started
    events = [e.json for e in run_events(rest)]
    assert [e["event"] for e in events[-2:]] == ["WorkflowCancelled", "WorkflowCompleted"]
    assert events[-2]["reason"] == "server shutting down"
    assert [e["event_index"] for e in events] == list(range(4, 4 + len(events)))
    assert_ends_with_end(rest, run_id, 3 + len(events))
    assert took < 3


# -- several nodes on one Redis --------------------------------------------------------------------


async def test_a_run_is_streamed_by_a_node_that_does_not_own_it_and_resumed_on_its_owner(
    start_server: StartServer, redis_url: str, gate: Gate
) -> None:
    """Node b streams a run node a holds (through Redis), live; b shuts down, and its stream
    ends within the flush time without `end`; the client resumes on a with Last-Event-ID."""
    owner = await start_server(store=redis_url, node_id="a", catalog=gate.catalog(2))
    other = await start_server(store=redis_url, node_id="b", catalog=gate.catalog(2))
    run_id = await held_run(owner, 4)
    with trio.fail_after(20):
        async with open_stream(other.base_url, run_id) as answer:
            stream = aiter(items(answer))
            first = [await anext(stream) for _ in range(7)]  # retry, catch_up, 4, subscribed
            await gate.ticks_in.send(None)
            live = await anext(stream)
            assert isinstance(live, Event) and live.json["content"] == "one more"
            async with trio.open_nursery() as nursery:
                nursery.start_soon(other.stop)
                started = trio.current_time()
                cut = [item async for item in stream]
                took = trio.current_time() - started
    assert named(first)[0].event == "catch_up" and named(first)[-1].event == "subscribed"
    assert PUMP_FLUSH_TIMEOUT - 0.5 < took < PUMP_FLUSH_TIMEOUT + 3
    assert not [item for item in cut if isinstance(item, Event)], cut
    gate.opened.set()
    rest = await read_all(owner.base_url, run_id, headers={"Last-Event-ID": str(live.id)})
    seen = run_events(first) + [live] + run_events(rest)
    assert [e.id for e in seen] == [str(i) for i in range(len(seen))]
    assert [e.data for e in seen] == await websocket_replay(owner, run_id)
    assert_ends_with_end(rest, run_id, len(seen) - 1)


async def test_a_history_past_its_retention_ends_the_stream_with_run_error(
    start_server: StartServer, redis_url: str
) -> None:
    server = await start_server(store=redis_url, retention=0.5, demo_step_delay=0.0)
    run_id = await start_run(server)
    await wait_finished(server, run_id)
    await trio.sleep(0.7)
    stream = await read_all(server.base_url, run_id)
    assert [c.event for c in named(stream)] == ["replay", "run_error"]
    error = named(stream)[-1].json
    assert error["event"] == "error" and error["run_id"] == run_id and "is gone" in error["error"]
    assert run_events(stream) == []
