"""Faults of a cluster: several `runcast serve` processes on one real redis-server
(tests/conftest.py `start_cluster`, a 2 s lease renewed every 0.5 s), real WebSocket clients.

- an owner node killed with SIGKILL: every run it held is closed by another node with one
  terminal `WorkflowError` (reason `interrupted`), which the followers on the other nodes get
  live, gap-free and exactly once, within the lease and a couple of sweeps; the node started
  again under the same id leaves those runs as they are;
- an owner node paused (SIGSTOP) past its lease, then resumed: its runs are closed by another
  node, what it still had to write is refused, and it serves new runs again;
- redis-server killed with SIGKILL (AOF, fsync always) and started again: every event a client
  saw is still there, clients hear of the outage instead of waiting, and the nodes carry on.

Clients keep every frame as the server sent it, so histories are compared byte for byte.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    connect_websocket_url,
    open_websocket_url,
)

from tests.conftest import CLUSTER_LEASE_TTL, Cluster, Node, RedisServer, StartCluster

STEP_DELAY = "0.5"  # seconds per demo step: a run takes about 4 s (42 events)
RUNS = 3  # runs on the node that fails
CLOSE_BOUND = CLUSTER_LEASE_TTL + 3.0  # seconds from the fault to the last follower's end
TERMINAL = ("WorkflowCompleted", "WorkflowError")

Connect = Callable[[str, str], Awaitable["Client"]]


def decoded(frame: str | bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(frame)
    return body


@attrs.define
class Client:
    """One WebSocket client, its frames kept as the server sent them, with when each came."""

    name: str
    ws: WebSocketConnection
    frames: list[str] = attrs.Factory(list)
    times: list[float] = attrs.Factory(list)
    close_code: int | None = None
    closed_at: float | None = None
    gone: trio.Event = attrs.Factory(trio.Event)

    async def receive(self) -> None:
        try:
            while True:
                frame = await self.ws.get_message()
                self.frames.append(str(frame))
                self.times.append(time.monotonic())
        except ConnectionClosed as closed:
            self.close_code = None if closed.reason is None else closed.reason.code
            self.closed_at = time.monotonic()
        finally:
            self.gone.set()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_message(json.dumps(message))

    def events(self, run_id: str | None = None) -> list[str]:
        """The raw frames of run events (of `run_id`), in the order they came."""
        return [
            frame for frame in self.frames
            if "event_index" in (body := decoded(frame))
            and (run_id is None or body["run_id"] == run_id)
        ]

    def terminal(self) -> dict[str, Any] | None:
        for frame in self.frames:
            body = decoded(frame)
            if body.get("event") in TERMINAL:
                return body
        return None

    def terminal_at(self) -> float | None:
        for frame, at in zip(self.frames, self.times, strict=True):
            if decoded(frame).get("event") in TERMINAL:
                return at
        return None

    def errors(self) -> list[dict[str, Any]]:
        return [body for frame in self.frames if (body := decoded(frame)).get("event") == "error"]


@asynccontextmanager
async def clients() -> AsyncIterator[Connect]:
    """`await connect(url, name)`: a `Client` receiving in the background until the block ends
    (then every socket is closed)."""
    async with trio.open_nursery() as nursery:
        opened: list[Client] = []

        async def connect(url: str, name: str) -> Client:
            ws = await connect_websocket_url(nursery, url)  # closed below
            with trio.fail_after(10):
                connected = decoded(await ws.get_message())
            assert connected["event"] == "connected", connected
            client = Client(name, ws)
            opened.append(client)
            nursery.start_soon(client.receive)
            return client

        try:
            yield connect
        finally:
            with trio.move_on_after(5) as cleanup:
                cleanup.shield = True
                for client in opened:
                    await client.ws.aclose()
            nursery.cancel_scope.cancel()


async def wait_until(what: str, condition: Callable[[], bool], timeout: float) -> float:
    """Poll `condition` until it holds; how long that took. Fails after `timeout` seconds."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await trio.sleep(0.02)
    return time.monotonic() - began


async def start_run(connect: Connect, node: Node, name: str) -> tuple[Client, str]:
    """A client that started a demo run on `node`, and the run's id."""
    client = await connect(node.ws_url, name)
    await client.send({"action": "start-workflow", "workflow_id": "content-creation-workflow",
                       "message": name})
    await wait_until(f"{name}: the run's first event", lambda: bool(client.frames), 10)
    first = decoded(client.frames[0])
    assert first.get("event") == "WorkflowStarted", first
    return client, str(first["run_id"])


async def follow(connect: Connect, node: Node, run_id: str, name: str) -> Client:
    """A client following `run_id` from its first event through `node`."""
    client = await connect(node.ws_url, name)
    await client.send({"action": "reconnect", "run_id": run_id})
    return client


async def replay(node: Node, run_id: str) -> list[str] | None:
    """Every event of the finished `run_id` as `node` replays it (raw frames); None while the
    run is still running there."""
    async with open_websocket_url(node.ws_url) as ws:
        with trio.fail_after(15):
            assert decoded(await ws.get_message())["event"] == "connected"
            await ws.send_message(json.dumps({"action": "reconnect", "run_id": run_id}))
            opening = decoded(await ws.get_message())
            if opening["event"] in ("catch_up", "subscribed"):
                return None
            assert opening["event"] == "replay", opening
            return [str(await ws.get_message()) for _ in range(opening["total_events"])]


async def finished_replay(node: Node, run_id: str, timeout: float) -> list[str]:
    """`replay`, once the run is finished (waiting up to `timeout` seconds for that)."""
    deadline = time.monotonic() + timeout
    while True:
        frames = await replay(node, run_id)
        if frames is not None:
            return frames
        assert time.monotonic() < deadline, f"run {run_id} not finished on {node.node_id}"
        await trio.sleep(0.25)


def indices(frames: list[str]) -> list[int]:
    return [decoded(frame)["event_index"] for frame in frames]


def assert_whole_history(run_id: str, frames: list[str]) -> dict[str, Any]:
    """Events 0..n-1 of `run_id`, each once, in order, with one terminal event, the last one;
    that terminal event."""
    bodies = [decoded(frame) for frame in frames]
    assert {body["run_id"] for body in bodies} == {run_id}
    assert indices(frames) == list(range(len(frames))), indices(frames)
    assert bodies[0]["event"] == "WorkflowStarted"
    terminals = [body for body in bodies if body["event"] in TERMINAL]
    assert len(terminals) == 1, [body["event"] for body in terminals]
    assert bodies[-1] is terminals[0], "events after the terminal one"
    return terminals[0]


def assert_interrupted(terminal: dict[str, Any]) -> None:
    assert terminal["event"] == "WorkflowError", terminal
    assert terminal["reason"] == "interrupted", terminal


def assert_gap_free(seen: list[str]) -> None:
    """A client's events: consecutive indices from its first, each once."""
    got = indices(seen)
    assert got == list(range(got[0], got[0] + len(got))) if got else True, got


async def health(node: Node) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as http:
        answer = await http.get(f"{node.url}/health")
        return answer.status_code, answer.json()


async def run_to_completion(
    node: Node, name: str, within: float, refusals: list[str] | None = None
) -> list[str]:
    """Start a demo run on `node`, retrying with backoff while it is refused, and follow it to
    its terminal event, which must be WorkflowCompleted; its events. With `refusals`, a run
    that ends otherwise is tried again too, and every refusal and failed run goes there."""
    retry_failed = refusals is not None
    deadline = time.monotonic() + within
    delay = 0.2
    refusals = [] if refusals is None else refusals
    while True:
        try:
            async with open_websocket_url(node.ws_url) as ws:
                with trio.fail_after(10):
                    assert decoded(await ws.get_message())["event"] == "connected"
                    await ws.send_message(json.dumps(
                        {"action": "start-workflow", "workflow_id": "content-creation-workflow",
                         "message": name}
                    ))
                    answer = str(await ws.get_message())
                first = decoded(answer)
                if first.get("event") == "WorkflowStarted":
                    frames = [answer]
                    with trio.fail_after(20):
                        while decoded(frames[-1]).get("event") not in TERMINAL + ("error",):
                            frames.append(str(await ws.get_message()))
                    end = decoded(frames[-1])
                    if end["event"] == "WorkflowCompleted" or not retry_failed:
                        assert end["event"] == "WorkflowCompleted", f"{name}: {frames[-3:]}"
                        assert indices(frames) == list(range(len(frames)))
                        return frames
                    answer = f"started, then {frames[-1]}"
                refusals.append(answer)
        except (OSError, ConnectionClosed, trio.TooSlowError) as failure:
            refusals.append(repr(failure))
        assert time.monotonic() < deadline, f"{name}: no run completed: {refusals[-5:]}"
        await trio.sleep(delay)
        delay = min(delay * 2, 3.0)


# -- 1. an owner killed ----------------------------------------------------------------------


async def test_the_runs_of_a_killed_node_are_closed_once_and_followers_see_it_live(
    redis_url: str, start_cluster: StartCluster
) -> None:
    cluster = start_cluster(redis_url, 3, "--demo-step-delay", STEP_DELAY)
    owner, *others = cluster.nodes
    async with clients() as connect:
        run_ids = [(await start_run(connect, owner, f"run-{i}"))[1] for i in range(RUNS)]
        followers = {
            run_id: [await follow(connect, node, run_id, f"{run_id} on {node.node_id}")
                     for node in others]
            for run_id in run_ids
        }
        everyone = [client for each in followers.values() for client in each]
        await wait_until(
            "every follower has seen the runs under way",
            lambda: all(len(client.events()) >= 4 for client in everyone), 10,
        )

        owner.process.kill()
        killed = time.monotonic()
        owner.process.wait(timeout=10)
        await wait_until(
            "every follower has its run's terminal event",
            lambda: all(client.terminal() for client in everyone), CLOSE_BOUND + 10,
        )
        ends = [client.terminal_at() for client in everyone]
        slowest = max(end for end in ends if end is not None) - killed
        print(f"\nkill -9 of the owner -> last follower's terminal event: {slowest:.2f} s"
              f" (lease {CLUSTER_LEASE_TTL} s)")
        assert slowest < CLOSE_BOUND, f"{slowest:.2f} s"
        await trio.sleep(1.0)  # nothing comes after the end
        seen = {client.name: client.events() for client in everyone}
        for client in everyone:
            assert client.close_code is None, (client.name, client.close_code)
            assert not client.errors(), (client.name, client.errors())

    before: dict[str, list[str]] = {}
    for run_id, watching in followers.items():
        history = await finished_replay(others[0], run_id, 10)
        terminal = assert_whole_history(run_id, history)
        assert_interrupted(terminal)
        for node in others[1:]:
            assert await replay(node, run_id) == history, node.node_id
        for client in watching:
            # live: the follower was subscribed and got the end on the same socket, every event
            # from 0 exactly once
            assert seen[client.name] == history, client.name
        before[run_id] = history

    restarted = cluster.start(owner.node_id, port=owner.port)
    await trio.sleep(4 * 0.5)  # a few sweeps of every node, the restarted one's included
    for run_id, history in before.items():
        for node in [restarted, *others]:
            assert await replay(node, run_id) == history, (node.node_id, run_id)
        async with httpx.AsyncClient(timeout=5) as http:
            record = (await http.get(f"{restarted.url}/runs/{run_id}")).json()
        assert record["status"] == "ERROR" and record["event_count"] == len(history), record
    assert restarted.process.poll() is None
    assert "Traceback" not in cluster.log_of(restarted).split("runcast serving on")[-1]


# -- 2. an owner paused past its lease -------------------------------------------------------


async def test_a_node_paused_past_its_lease_has_its_runs_closed_and_its_late_writes_refused(
    redis_url: str, start_cluster: StartCluster
) -> None:
    cluster = start_cluster(redis_url, 3, "--demo-step-delay", STEP_DELAY)
    owner, *others = cluster.nodes
    async with clients() as connect:
        started = [await start_run(connect, owner, f"run-{i}") for i in range(RUNS)]
        run_ids = [run_id for _, run_id in started]
        followers = {
            run_id: [await follow(connect, node, run_id, f"{run_id} on {node.node_id}")
                     for node in others]
            for run_id in run_ids
        }
        everyone = [client for each in followers.values() for client in each]
        await wait_until(
            "every follower has seen the runs under way",
            lambda: all(len(client.events()) >= 4 for client in everyone), 10,
        )

        owner.process.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            await wait_until(
                "every follower has its run's terminal event",
                lambda: all(client.terminal() for client in everyone), CLOSE_BOUND + 10,
            )
            ends = [client.terminal_at() for client in everyone]
            slowest = max(end for end in ends if end is not None) - stopped
            print(f"\nSIGSTOP of the owner -> last follower's terminal event: {slowest:.2f} s")
            assert slowest < CLOSE_BOUND, f"{slowest:.2f} s"
            await trio.sleep(max(0.0, stopped + 2 * CLUSTER_LEASE_TTL - time.monotonic()))
        finally:
            owner.process.send_signal(signal.SIGCONT)
        resumed = time.monotonic()

        def refused(run_id: str) -> bool:
            """The resumed node's log says a write of `run_id` was refused: the run was closed
            (another node took it over), or the node no longer holds it."""
            log = cluster.log_of(owner)
            return (f"WriteRefused: run {run_id} is already finished" in log
                    or f"OwnershipLost: node {owner.node_id} no longer holds run {run_id}" in log)

        await wait_until(
            "the resumed node's log says the writes of each of its runs were refused",
            lambda: all(refused(run_id) for run_id in run_ids), 10,
        )
        log = cluster.log_of(owner)
        print(f"resumed node's log heard of the refusal after {time.monotonic() - resumed:.2f} s")
        assert "lost its lease" in log, log[-3000:]
        await trio.sleep(1.0)
        seen = {client.name: client.events() for client in everyone}
        for client in everyone:
            assert not client.errors(), (client.name, client.errors())
        starters = {run_id: client.events(run_id) for client, run_id in started}

    for run_id in run_ids:
        history = await finished_replay(others[0], run_id, 10)
        terminal = assert_whole_history(run_id, history)
        assert_interrupted(terminal)
        for node in [owner, *others[1:]]:
            assert await replay(node, run_id) == history, node.node_id
        for client in followers[run_id]:
            assert seen[client.name] == history, client.name
        # the client that started the run on the paused node gets the rest from the store
        assert starters[run_id] == history, run_id
        async with httpx.AsyncClient(timeout=5) as http:
            record = (await http.get(f"{others[0].url}/runs/{run_id}")).json()
        assert record["status"] == "ERROR" and record["event_count"] == len(history), record

    assert owner.process.poll() is None
    assert (await health(owner))[0] == 200
    fresh = await run_to_completion(owner, "after the pause", 20)
    fresh_id = decoded(fresh[0])["run_id"]
    for node in others:
        assert await finished_replay(node, fresh_id, 5) == fresh, node.node_id


# -- 3. redis-server killed ------------------------------------------------------------------


async def test_a_redis_outage_loses_no_event_a_client_saw_and_the_nodes_carry_on(
    own_redis: RedisServer, start_cluster: StartCluster
) -> None:
    cluster = start_cluster(own_redis.url, 2, "--demo-step-delay", STEP_DELAY)
    nodes = cluster.nodes
    outage: dict[str, Any] = {}
    async with clients() as connect:
        starters: list[tuple[Client, str]] = []
        for node in nodes:
            starters += [await start_run(connect, node, f"{node.node_id} run-{i}") for i in range(2)]
        followers: list[tuple[Client, str]] = []
        for index, (_, run_id) in enumerate(starters):
            other = nodes[1 - index // 2]  # the node that does not own the run
            followers.append((await follow(connect, other, run_id, f"{run_id} on {other.node_id}"),
                              run_id))
        watchers = starters + followers
        await wait_until(
            "every follower has seen the runs under way",
            lambda: all(len(client.events()) >= 4 for client, _ in followers), 10,
        )

        own_redis.kill()
        killed = time.monotonic()
        try:
            # followers hear that the live stream is interrupted, instead of waiting
            def told(client: Client) -> bool:
                return bool(client.errors()) or client.close_code is not None

            took = await wait_until("every follower is told", lambda: all(
                told(client) for client, _ in followers), 10)
            outage["followers told after"] = round(took, 2)
            for client, run_id in followers:
                assert not client.terminal(), client.name
                errors = client.errors()
                assert errors or client.close_code == 1011, (client.name, client.close_code)
                for error in errors:
                    assert error.get("run_id") == run_id, error
                    assert "interrupted" in error["error"], error
                outage[f"follower {client.name}"] = (errors, client.close_code)

            for node in nodes:
                # a new run is refused with an error frame, not left waiting
                trying = await connect(node.ws_url, f"start on {node.node_id} without Redis")
                await trying.send({"action": "start-workflow",
                                   "workflow_id": "content-creation-workflow"})
                await wait_until(f"{node.node_id} answers a start without Redis",
                                 lambda: bool(trying.frames) or trying.close_code is not None, 15)
                assert trying.frames, (node.node_id, trying.close_code)
                answer = decoded(trying.frames[0])
                outage[f"start on {node.node_id}"] = answer
                assert answer["event"] == "error", answer
                outage[f"health of {node.node_id}"] = await health(node)
            await trio.sleep(max(0.0, killed + 2 * CLUSTER_LEASE_TTL - time.monotonic()))
            # the clients that started the runs, on their owners, hear that they are lost
            for client, run_id in starters:
                outage[f"starter {client.name}"] = (client.errors(), client.close_code)
                assert not client.terminal(), client.name
                errors = client.errors()
                assert errors or client.close_code == 1011, (client.name, client.close_code)
                for error in errors:
                    assert error.get("run_id") == run_id, error
            for node in nodes:
                outage[f"health of {node.node_id} at {time.monotonic() - killed:.1f} s"] = (
                    await health(node)
                )
                assert node.process.poll() is None, cluster.log_of(node)[-3000:]
        finally:
            down_for = time.monotonic() - killed
            own_redis.start()
        outage["redis down for"] = round(down_for, 2)
        seen = [(client.name, run_id, client.events(run_id)) for client, run_id in watchers]

    print("\nwhile Redis was down:")
    for key, value in outage.items():
        print(f"  {key}: {value}")
    healths = {key: value for key, value in outage.items() if key.startswith("health of")}
    assert len(healths) == 2 * len(nodes)
    for key, (status, body) in healths.items():
        assert status == 503 and body["status"] == "failing", (key, status, body)

    began = time.monotonic()
    refused: dict[str, list[str]] = {node.node_id: [] for node in nodes}
    async with trio.open_nursery() as nursery:
        for node in nodes:
            nursery.start_soon(run_to_completion, node, f"after the outage on {node.node_id}", 25,
                               refused[node.node_id])
    print(f"a new run started and completed on every node {time.monotonic() - began:.1f} s"
          " after Redis came back; refused before that:")
    for node_id, refusals in refused.items():
        print(f"  {node_id}: {refusals}")
        # until a node has its lease again, a start is refused up front, never taken and failed
        for refusal in refusals:
            assert not refusal.startswith("started"), (node_id, refusal)
            assert "so no new run starts" in decoded(refusal)["error"], (node_id, refusal)

    endings = {}
    for _, run_id in starters:
        history = await finished_replay(nodes[0], run_id, 30)
        terminal = assert_whole_history(run_id, history)
        endings[run_id] = (terminal["event"], terminal.get("reason"), terminal.get("error"))
        assert await replay(nodes[1], run_id) == history
        for name, seen_run, events in seen:
            if seen_run == run_id:
                assert_gap_free(events)
                first = indices(events)[0] if events else 0
                assert events == history[first : first + len(events)], name
    print("the runs running at the kill ended with:")
    for run_id, ending in endings.items():
        print(f"  {run_id}: {ending}")
    for node in nodes:
        assert node.process.poll() is None
        assert (await health(node))[0] == 200
