"""client/client.py against a real server: every call on trio and on asyncio, and each
refusal as its own exception (unknown run or workflow, a finished run cancelled, a history past
a Redis store's --retention, no token or a wrong one, no server)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sniffio
import trio

from client import (
    AuthenticationFailed,
    ConnectionLost,
    HistoryGone,
    Refused,
    RunEvent,
    RunNotFound,
    RuncastClient,
    WorkflowNotFound,
)
from tests.client.loops import ON_BOTH_LOOPS, Loop
from tests.conftest import RunningServer, StartServer, free_port

WORKFLOW = "content-creation-workflow"
EVENTS = 42  # of a demo run


async def tour(url: str) -> dict[str, Any]:
    """Every call of the client once, on whatever event loop runs this."""
    async with RuncastClient(url) as client:
        workflows = await client.workflows()
        run = await client.start(WORKFLOW, message="tour", user_id="u1")
        events = [event async for event in client.watch(run.run_id)]
        tail = [event async for event in client.watch(run.run_id, from_index=40)]
        replayed = await client.replay(run.run_id)
        record = await client.get_run(run.run_id)
        listed = await client.list_runs(limit=10, status="completed")
        doomed = await client.start(WORKFLOW)
        await client.cancel(doomed.run_id, reason="enough")
        cancelled = [event async for event in client.watch(doomed.run_id)]
    return {
        "library": sniffio.current_async_library(),
        "workflows": workflows,
        "run": run,
        "events": events,
        "tail": tail,
        "replayed": replayed,
        "record": record,
        "listed": listed,
        "cancelled": cancelled,
    }


@ON_BOTH_LOOPS
async def test_every_call_on_trio_and_on_asyncio(
    server: RunningServer, loop: Loop, library: str
) -> None:
    seen = await loop(lambda: tour(server.base_url))
    assert seen["library"] == library
    assert [w.id for w in seen["workflows"]] == [WORKFLOW]
    run, events = seen["run"], seen["events"]
    assert run.started.name == "WorkflowStarted" and run.started.index == 0
    assert run.session_id and run.started.data["session_id"] == run.session_id
    assert [e.index for e in events] == list(range(EVENTS)) and events[-1].terminal
    assert events[0] == run.started
    assert all(json.loads(e.raw) == e.data and e.run_id == run.run_id for e in events)
    assert seen["tail"] == events[40:]
    assert seen["replayed"] == events
    record = seen["record"]
    assert (record.run_id, record.status, record.event_count) == (run.run_id, "COMPLETED", EVENTS)
    assert record.data["input"] == "tour" and record.data["user_id"] == "u1"
    assert run.run_id in [r.run_id for r in seen["listed"]]
    assert {r.status for r in seen["listed"]} == {"COMPLETED"}
    cancelled: list[RunEvent] = seen["cancelled"]
    assert [e.name for e in cancelled[-2:]] == ["WorkflowCancelled", "WorkflowCompleted"]
    assert [e.data["reason"] for e in cancelled[-2:]] == ["enough", "enough"]


async def page_through(url: str) -> dict[str, Any]:
    """Seven runs, then every run through pages of three, an eighth started between two pages;
    and the filters of `list_runs`."""
    async with RuncastClient(url) as client:
        started = [(await client.start(WORKFLOW)).run_id for _ in range(7)]
        paged: list[str] = []
        pages = client.all_runs(page_size=3)
        async for run in pages:
            paged.append(run.run_id)
            if len(paged) == 4:  # within the second page
                late = (await client.start(WORKFLOW)).run_id
        one = started[3]
        return {
            "started": started,
            "late": late,
            "paged": paged,
            "by_prefix": [r.run_id for r in await client.list_runs(run_id_prefix=one[:13])],
            "by_workflow": len(await client.list_runs(workflow_id=WORKFLOW)),
            "other_workflow": await client.list_runs(workflow_id="nope"),
            "running_ids": [r.run_id async for r in client.all_runs("running", page_size=2)],
            "running": [r.run_id for r in await client.list_runs(status="RUNNING", limit=1000)],
        }


@ON_BOTH_LOOPS
async def test_all_runs_pages_through_every_run_once_newest_first_and_filters_apply(
    start_server: StartServer, loop: Loop, library: str
) -> None:
    server = await start_server(demo_step_delay=0.5)  # runs go on while they are paged
    seen = await loop(lambda: page_through(server.base_url))
    started = seen["started"]
    assert seen["paged"] == started[::-1]  # the run started meanwhile is newer than every page
    assert seen["late"] not in seen["paged"]
    one = started[3]
    assert seen["by_prefix"] == [one]
    assert seen["by_workflow"] == 8 and seen["other_workflow"] == []
    assert set(seen["running_ids"]) == set(seen["running"]) and len(seen["running"]) >= 1


async def test_a_watch_from_an_index_the_run_has_not_reached_waits_for_it(
    start_server: StartServer,
) -> None:
    server = await start_server(demo_step_delay=0.1)
    async with RuncastClient(server.base_url) as client:
        run = await client.start(WORKFLOW)
        events = [event async for event in client.watch(run.run_id, from_index=30)]
        assert [event.index for event in events] == list(range(30, EVENTS))
        assert [e.index for e in await client.replay(run.run_id)] == list(range(EVENTS))
        # a finished run watched from beyond its end: nothing, and the watch ends
        assert [event async for event in client.watch(run.run_id, from_index=100)] == []


async def test_replay_of_a_running_run_gives_its_events_so_far(start_server: StartServer) -> None:
    server = await start_server(demo_step_delay=0.5)
    async with RuncastClient(server.base_url) as client:
        run = await client.start(WORKFLOW)
        await trio.sleep(0.6)
        so_far = await client.replay(run.run_id)
        assert 2 <= len(so_far) < EVENTS
        assert [event.index for event in so_far] == list(range(len(so_far)))
        await client.cancel(run.run_id)


async def test_unknown_runs_and_workflows_are_refused_by_name(server: RunningServer) -> None:
    async with RuncastClient(server.base_url) as client:
        with pytest.raises(RunNotFound, match="Run nope not found") as unknown:
            async for _ in client.watch("nope"):
                pass
        assert unknown.value.run_id == "nope"
        with pytest.raises(RunNotFound, match="Run nope not found"):
            await client.replay("nope")
        with pytest.raises(RunNotFound, match="Run nope not found"):
            await client.cancel("nope")
        with pytest.raises(RunNotFound, match=r"Run a\?b not found") as unknown:
            await client.get_run("a?b")
        assert unknown.value.run_id == "a?b"
        with pytest.raises(WorkflowNotFound, match="Workflow nope not found"):
            await client.start("nope")
        with pytest.raises(Refused, match="limit must be an integer from 1 to 1000"):
            await client.list_runs(limit=0)
        run = await client.start(WORKFLOW)
        async for _ in client.watch(run.run_id):
            pass
        with pytest.raises(Refused, match=f"Run {run.run_id} is already finished"):
            await client.cancel(run.run_id)


async def test_a_history_past_its_retention_is_history_gone(
    start_server: StartServer, redis_url: str
) -> None:
    server = await start_server(store=redis_url, retention=0.5, demo_step_delay=0.0)
    async with RuncastClient(server.base_url) as client:
        run = await client.start(WORKFLOW)
        assert len([event async for event in client.watch(run.run_id)]) == EVENTS
        with trio.fail_after(10):
            while True:  # until Redis expires the history
                try:
                    await client.replay(run.run_id)
                except HistoryGone as gone:
                    assert gone.run_id == run.run_id
                    assert "--retention" in str(gone)
                    break
                await trio.sleep(0.1)
        with pytest.raises(HistoryGone, match=f"the history of run {run.run_id} is gone"):
            async for _ in client.watch(run.run_id, from_index=5):
                pass
        assert (await client.get_run(run.run_id)).status == "COMPLETED"  # the record stays


async def test_a_token_is_sent_and_a_missing_or_wrong_one_refused(
    start_server: StartServer,
) -> None:
    server = await start_server(token="s3cret")
    async with RuncastClient(server.base_url, token="s3cret") as client:
        run = await client.start(WORKFLOW)
        assert len([event async for event in client.watch(run.run_id)]) == EVENTS
        assert (await client.get_run(run.run_id)).event_count == EVENTS
    for token, why in ((None, "requires a token"), ("wrong", "refused the token")):
        async with RuncastClient(server.base_url, token=token) as client:
            with pytest.raises(AuthenticationFailed, match=why):
                await client.start(WORKFLOW)
            with pytest.raises(AuthenticationFailed, match=why):
                async for _ in client.watch(run.run_id):
                    pass
            with pytest.raises(AuthenticationFailed, match="Authorization: Bearer"):
                await client.list_runs()


async def test_no_server_is_connection_lost_at_once_for_single_requests() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with RuncastClient(url) as client:
        with trio.fail_after(10):
            with pytest.raises(ConnectionLost, match=f"cannot reach {url}"):
                await client.list_runs()
            with pytest.raises(ConnectionLost, match=f"cannot connect to {url}/workflows/ws"):
                await client.start(WORKFLOW)


async def test_a_server_that_does_not_answer_in_time_is_connection_lost() -> None:
    """The client's timeout bounds the wait for the answer to a command: here a socket that
    accepts and then never speaks, in place of the server."""
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]

        async def mute(stream: trio.SocketStream) -> None:
            async with stream:
                await trio.sleep_forever()

        nursery.start_soon(trio.serve_listeners, mute, listeners)
        async with RuncastClient(f"http://127.0.0.1:{port}", timeout=0.3) as client:
            with pytest.raises(ConnectionLost):
                await client.start(WORKFLOW)
            with pytest.raises(ConnectionLost):
                await client.get_run("x")
        nursery.cancel_scope.cancel()


def test_a_bad_url_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="the server URL must be http://HOST:PORT"):
        RuncastClient("ws://127.0.0.1:7777")


async def test_calls_outside_async_with_say_how_to_use_the_client() -> None:
    client = RuncastClient()
    with pytest.raises(RuntimeError, match="async with RuncastClient"):
        await client.workflows()
    with pytest.raises(RuntimeError, match="async with RuncastClient"):
        client.watch("x")
