"""client/watch.py against a real server, on trio and on asyncio: watches that resume by
themselves through connections dropped at random points (a relay cutting the server's sockets,
mid-frame too) and a server restart on the same port and SQLite file, each run's events once,
in order, and whole; a watch that gives up after its budget; a watch left early closes its
connection."""

from __future__ import annotations

import json
import random
from functools import partial

import anyio
import httpx
import pytest
import sniffio
import trio

from client import Backoff, ConnectionLost, RuncastClient
from tests.client.loops import ON_BOTH_LOOPS, Loop
from tests.client.relay import Relay
from tests.clients import TERMINAL, events_only, ws_client
from tests.conftest import RunningServer, StartServer

WORKFLOW = "content-creation-workflow"
SEED = 20261115
WAVE = 25  # runs started before the restart, and again after it
STEP_DELAY = 0.1  # a run takes 0.8 s: the restart comes while the first wave runs
QUICK = Backoff(first=0.01, ceiling=0.3, give_up_after=30)

Received = dict[str, list[str]]  # run id -> the frames of its events, as the client got them


async def watch_all(url: str, run_ids: list[str], backoff: Backoff) -> tuple[str, Received]:
    """Watch every run at once through one client; which event loop ran it, and the events."""
    received: Received = {}
    async with RuncastClient(url, backoff=backoff) as client:

        async def watch(run_id: str) -> None:
            received[run_id] = [event.raw async for event in client.watch(run_id)]

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tasks:
                for run_id in run_ids:
                    tasks.start_soon(watch, run_id)
    return sniffio.current_async_library(), received


async def start_runs(server: RunningServer, rng: random.Random, wave: str) -> list[str]:
    run_ids = []
    async with RuncastClient(server.base_url) as client:
        for number in range(WAVE):
            run_ids.append((await client.start(WORKFLOW, message=f"{wave}{number}")).run_id)
            await trio.sleep(rng.uniform(0, 0.01))
    return run_ids


async def history(server: RunningServer, run_id: str) -> list[str]:
    """The run's events as the server keeps them, read with a plain WebSocket client."""
    async with ws_client(server.ws_url) as ws:
        await ws.send({"action": "reconnect", "run_id": run_id, "last_event_index": None})
        frames = [await ws.recv()]  # replay
        assert frames[0]["event"] == "replay", frames[0]
        frames += [await ws.recv() for _ in range(frames[0]["total_events"])]
    return [json.dumps(frame) for frame in events_only(frames)]


@ON_BOTH_LOOPS
async def test_every_event_of_50_runs_once_in_order_through_drops_and_a_restart(
    start_server: StartServer, loop: Loop, library: str
) -> None:
    rng = random.Random(SEED)
    server = await start_server(demo_step_delay=STEP_DELAY)
    relay = Relay(
        server.port, random.Random(rng.random()), cut_share=0.75, cut_within=(50, 12_000)
    )
    received: Received = {}

    async def watch_wave(run_ids: list[str]) -> None:
        outcome = await loop(partial(watch_all, relay.url, run_ids, QUICK))
        assert isinstance(outcome, tuple)
        ran_on, got = outcome
        assert ran_on == library
        received.update(got)

    with trio.fail_after(90):
        async with trio.open_nursery() as relaying:
            await relaying.start(relay.serve)
            async with trio.open_nursery() as watching:
                first_wave = await start_runs(server, rng, "a")
                watching.start_soon(watch_wave, first_wave)
                await trio.sleep(rng.uniform(0.2, 0.5))
                await server.stop()  # the relay's connections to it drop; new ones are refused
                await trio.sleep(rng.uniform(0.05, 0.3))
                server = await start_server(demo_step_delay=STEP_DELAY, port=server.port)
                second_wave = await start_runs(server, rng, "b")
                watching.start_soon(watch_wave, second_wave)
            relaying.cancel_scope.cancel()

    assert sorted(received) == sorted(first_wave + second_wave)
    interrupted = 0
    for run_id, frames in received.items():
        events = [json.loads(frame) for frame in frames]
        assert [event["event_index"] for event in events] == list(range(len(events)))
        assert events[-1]["event"] in TERMINAL and events[0]["event"] == "WorkflowStarted"
        assert events == [json.loads(frame) for frame in await history(server, run_id)]
        interrupted += any(event["event"] == "WorkflowCancelled" for event in events)
    assert interrupted > 0  # the restart came while runs ran
    assert relay.cuts >= 50 and relay.connections > len(received)


@ON_BOTH_LOOPS
async def test_a_watch_gives_up_after_its_budget_without_the_server(
    start_server: StartServer, loop: Loop, library: str
) -> None:
    server = await start_server(demo_step_delay=STEP_DELAY)
    async with RuncastClient(server.base_url) as client:
        run_id = (await client.start(WORKFLOW)).run_id
    await server.stop()
    budget = Backoff(first=0.01, ceiling=0.05, give_up_after=0.5)

    async def watch() -> float:
        async with RuncastClient(server.base_url, backoff=budget) as client:
            began = anyio.current_time()
            gave_up = f"gave up following run {run_id} after 0.5 s"
            with pytest.raises(ConnectionLost, match=gave_up):
                async for _ in client.watch(run_id):
                    pass
            return anyio.current_time() - began

    took = await loop(watch)
    assert isinstance(took, float) and 0.5 <= took < 3


async def open_websockets(server: RunningServer) -> int:
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{server.base_url}/metrics")).text
    line = next(
        line for line in metrics.splitlines() if line.startswith("runcast_websockets_open ")
    )
    return int(float(line.split()[1]))


async def wait_for_open_websockets(server: RunningServer, expected: int) -> None:
    with trio.fail_after(10):
        while await open_websockets(server) != expected:
            await trio.sleep(0.02)


async def test_leaving_a_watch_early_closes_its_connection(start_server: StartServer) -> None:
    server = await start_server(demo_step_delay=1.0)
    async with RuncastClient(server.base_url) as client:
        run_id = (await client.start(WORKFLOW)).run_id
        async with client.watch(run_id) as events:
            async for event in events:
                assert event.index == 0
                await wait_for_open_websockets(server, 1)
                break
        await wait_for_open_websockets(server, 0)
        # a watch never closed is closed with its client
        async for event in client.watch(run_id):
            break
        await wait_for_open_websockets(server, 1)
    await wait_for_open_websockets(server, 0)
