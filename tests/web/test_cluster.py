"""Several `runcast serve` processes on one real redis-server (tests/conftest.py `start_cluster`):
a run started on one node is followed, replayed and cancelled through the others; a client hops
between nodes at random points of its runs; a node stopped with SIGTERM ends its runs while
followers on the other nodes watch; graph runs are read on a node that does not run them."""

from __future__ import annotations

import random
import signal
import subprocess
from collections import Counter
from typing import Any

import httpx
import trio
from trio_websocket import ConnectionClosed

from actors.workflows.examples.code_review import code_review_graph
from tests.clients import TERMINAL, JsonSocket, events_only, ws_client
from tests.conftest import Cluster, Node, RedisServer, StartCluster
from tests.web.graph_helpers import UNFIXABLE_CODE, create_graph, start_background


async def test_a_run_started_on_one_node_is_followed_and_cancelled_through_the_others(
    redis_server: RedisServer, redis_url: str, start_cluster: StartCluster
) -> None:
    cluster = start_cluster(redis_url, 3, "--demo-step-delay", "0.05")
    owner, follower, canceller = cluster.nodes
    async with ws_client(owner.ws_url) as started:
        first = await started.start()
        run_id = first["run_id"]
        async with ws_client(follower.ws_url) as ws:
            await ws.send({"action": "reconnect", "run_id": run_id, "last_event_index": 0})
            frames = [await ws.recv() for _ in range(6)]
            async with ws_client(canceller.ws_url) as cancel:
                await cancel.send({"action": "cancel-run", "run_id": run_id})
                assert (await cancel.recv())["event"] == "cancel_requested"
            frames += await ws.recv_until_terminal()
    events = events_only(frames)
    assert [e["event_index"] for e in events] == list(range(1, len(events) + 1))
    assert [e["event"] for e in events[-2:]] == ["WorkflowCancelled", "WorkflowCompleted"]


# --- shared helpers ------------------------------------------------------------------------------

WORKFLOW = "content-creation-workflow"
EVENTS_PER_RUN = 42  # the demo workflow's, with its default 8 steps of 2 ticks


def stop_node_cleanly(cluster: Cluster, node: Node) -> None:
    """SIGTERM `node`: it must exit 0 within 20 s, with no traceback in its log (its stderr)."""
    node.process.send_signal(signal.SIGTERM)
    try:
        node.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        node.process.kill()
        raise AssertionError(f"{node.node_id} did not stop within 20 s of SIGTERM") from None
    log = cluster.log_of(node)
    assert node.process.returncode == 0, f"{node.node_id} exited {node.process.returncode}:\n{log}"
    assert "Traceback" not in log, f"{node.node_id} logged a traceback:\n{log}"


def metric(text: str, sample: str) -> float:
    """The value of one sample line (`name` or `name{labels}`) of a Prometheus text answer."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    raise AssertionError(f"no sample {sample} in /metrics:\n{text}")


# --- a client hopping between nodes --------------------------------------------------------------

HOP_SEED = 20240611
HOP_CLIENTS = 12  # concurrent clients
HOP_RUNS_PER_CLIENT = 10  # 120 runs in all
HOP_STEP_DELAY = "0.03"  # 8 steps: a run lasts about a quarter of a second


async def read_frames(
    ws: JsonSocket, run_id: str, events: list[dict[str, Any]], budget: int, subscribed_at: int | None
) -> None:
    """Read up to `budget` frames of `run_id` into `events` (stopping after the terminal one):
    each must be the run's next event, except that once `subscribed_at` events are in, the next
    frame must be its `subscribed` frame (after a catch_up)."""
    for _ in range(budget):
        frame = await ws.recv()
        if subscribed_at is not None and len(events) == subscribed_at:
            assert frame == {
                "event": "subscribed", "run_id": run_id, "status": "running",
                "current_event_count": subscribed_at,
                "message": "Subscribed to workflow run. You will receive new events as they occur.",
            }, frame
            subscribed_at = None
            continue
        assert frame.get("run_id") == run_id, frame
        assert frame.get("event_index") == len(events), (len(events), frame)
        events.append(frame)
        if frame["event"] in TERMINAL:
            return


async def hop_through_run(
    rng: random.Random, nodes: list[Node], label: str, kinds: Counter[str]
) -> tuple[str, str, list[dict[str, Any]]]:
    """Start a run on a random node, read a random number of its frames, drop the socket,
    reconnect from the last index seen to another random node, and so on to the terminal event:
    (run id, the node it started on, its events)."""
    node = rng.choice(nodes)
    owner = node.node_id
    events: list[dict[str, Any]] = []
    async with ws_client(node.ws_url) as ws:
        await ws.send({"action": "start-workflow", "workflow_id": WORKFLOW, "message": label})
        first = await ws.recv()
        assert (first.get("event"), first.get("event_index")) == ("WorkflowStarted", 0), first
        events.append(first)
        await read_frames(ws, first["run_id"], events, rng.randint(0, 12), None)
    run_id = first["run_id"]
    while events[-1]["event"] not in TERMINAL:
        if rng.random() < 0.6:
            await trio.sleep(rng.uniform(0, 0.08))
        node = rng.choice([other for other in nodes if other is not node])
        last = events[-1]["event_index"]
        async with ws_client(node.ws_url) as ws:
            await ws.send({"action": "reconnect", "run_id": run_id, "last_event_index": last})
            opening = await ws.recv()
            kind = opening.get("event")
            budget = rng.randint(1, 12)
            if kind == "replay":
                kinds["replay"] += 1
                assert opening == {
                    "event": "replay", "run_id": run_id, "status": "COMPLETED",
                    "total_events": EVENTS_PER_RUN,
                    "message": "Run COMPLETED. Replaying all events.",
                }, opening
                replayed: list[dict[str, Any]] = []
                await read_frames(ws, run_id, replayed, EVENTS_PER_RUN, None)
                assert replayed[: len(events)] == events, f"{label}: the replay differs"
                events = replayed
            elif kind == "catch_up":
                kinds["catch_up"] += 1
                count = opening.get("current_event_count")
                assert isinstance(count, int) and count > last + 1, (last, opening)
                assert opening == {
                    "event": "catch_up", "run_id": run_id, "status": "running",
                    "missed_events": count - (last + 1), "current_event_count": count,
                    "message": f"Catching up on {count - (last + 1)} missed events.",
                }, (last, opening)
                await read_frames(ws, run_id, events, budget, count)
            else:
                kinds["subscribed"] += 1
                assert opening == {
                    "event": "subscribed", "run_id": run_id, "status": "running",
                    "current_event_count": last + 1,
                    "message": "Subscribed to workflow run. You will receive new events as they occur.",
                }, (last, opening)
                await read_frames(ws, run_id, events, budget, None)
    assert len(events) == EVENTS_PER_RUN, (label, len(events))
    assert events[-1]["event"] == "WorkflowCompleted", events[-1]
    return run_id, owner, events


async def replays_on(
    node: Node, runs: dict[str, list[dict[str, Any]]], rng: random.Random
) -> None:
    """Every run replays in full on `node`, whatever last_event_index the client sends."""
    async with ws_client(node.ws_url) as ws:
        for run_id, events in runs.items():
            last = rng.choice([None, 0, 10, EVENTS_PER_RUN - 1, EVENTS_PER_RUN + 5])
            await ws.send({"action": "reconnect", "run_id": run_id, "last_event_index": last})
            opening = await ws.recv()
            assert opening.get("event") == "replay", (node.node_id, last, opening)
            assert (opening["status"], opening["total_events"]) == ("COMPLETED", EVENTS_PER_RUN)
            replayed: list[dict[str, Any]] = []
            await read_frames(ws, run_id, replayed, EVENTS_PER_RUN, None)
            assert replayed == events, f"{node.node_id} replays {run_id} differently"


async def test_a_client_hopping_between_nodes_gets_every_event_once_in_order(
    redis_url: str, start_cluster: StartCluster
) -> None:
    cluster = start_cluster(redis_url, 3, "--demo-step-delay", HOP_STEP_DELAY)
    nodes = cluster.nodes
    kinds: Counter[str] = Counter()
    runs: dict[str, list[dict[str, Any]]] = {}
    owners: dict[str, str] = {}

    async def client(index: int) -> None:
        rng = random.Random(HOP_SEED * 100 + index)
        for number in range(HOP_RUNS_PER_CLIENT):
            run_id, owner, events = await hop_through_run(rng, nodes, f"c{index}-r{number}", kinds)
            assert run_id not in runs
            runs[run_id], owners[run_id] = events, owner

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for index in range(HOP_CLIENTS):
                nursery.start_soon(client, index)
    assert len(runs) == HOP_CLIENTS * HOP_RUNS_PER_CLIENT
    print(f"reconnects by opening frame: {dict(kinds)}")
    assert kinds["catch_up"] > 0, kinds  # the point of hopping mid-run

    # every finished run replays in full on every node
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for index, node in enumerate(nodes):
                nursery.start_soon(replays_on, node, runs, random.Random(HOP_SEED + index))

    # every node lists every run and shows each, with the node that ran it
    started = Counter(owners.values())
    async with httpx.AsyncClient(timeout=10) as http:
        for node in nodes:
            listed = (await http.get(f"{node.url}/runs", params={"limit": 1000})).json()["runs"]
            assert {r["run_id"] for r in listed} == set(runs), node.node_id
            for record in listed:
                assert (record["status"], record["event_count"], record["node"]) == (
                    "COMPLETED", EVENTS_PER_RUN, owners[record["run_id"]]
                ), (node.node_id, record)
            for run_id, events in runs.items():
                answer = await http.get(f"{node.url}/runs/{run_id}")
                assert answer.status_code == 200, (node.node_id, answer.text)
                record = answer.json()
                assert (record["run_id"], record["status"], record["event_count"]) == (
                    run_id, "COMPLETED", EVENTS_PER_RUN
                )
                assert (record["node"], record["session_id"]) == (
                    owners[run_id], events[0]["session_id"]
                )
            # /metrics answers on every node, counting the runs that node ran
            answer = await http.get(f"{node.url}/metrics")
            assert answer.status_code == 200, answer.text
            mine = started[node.node_id]
            assert metric(answer.text, "runcast_runs_started_total") == mine, node.node_id
            assert metric(answer.text, 'runcast_runs_finished_total{status="COMPLETED"}') == mine
            assert metric(answer.text, "runcast_events_appended_total") == mine * EVENTS_PER_RUN
            assert metric(answer.text, "runcast_live_runs") == 0


# --- a node stopped while others follow its runs -------------------------------------------------

SIGTERM_RUNS = 3
SIGTERM_STEP_DELAY = "0.3"  # 8 steps: a run lasts about 2.4 s, so it is running when its node stops


async def test_sigterm_of_a_node_ends_its_runs_live_for_followers_on_the_others(
    redis_url: str, start_cluster: StartCluster
) -> None:
    cluster = start_cluster(redis_url, 3, "--demo-step-delay", SIGTERM_STEP_DELAY)
    victim, *others = cluster.nodes
    starters: dict[str, list[dict[str, Any]]] = {}  # run id: what its starting socket got
    closes: dict[str, int | None] = {}
    followed: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (run id, node id): frames

    async def starter(task_status: trio.TaskStatus[str]) -> None:
        """Start a run on the victim; read its events to the end, then the close 1001."""
        async with ws_client(victim.ws_url) as ws:
            first = await ws.start(message="stopped with its node")
            run_id = first["run_id"]
            starters[run_id] = [first]
            task_status.started(run_id)
            starters[run_id] += await ws.recv_until_terminal()
            try:
                extra = await ws.recv()
            except ConnectionClosed as closed:
                closes[run_id] = closed.reason.code if closed.reason else None
            else:
                raise AssertionError(f"a frame after the terminal event: {extra}")

    async def follower(node: Node, run_id: str, task_status: trio.TaskStatus[None]) -> None:
        """Follow `run_id` on `node` from index 1; started once subscribed (live)."""
        frames: list[dict[str, Any]] = []
        followed[run_id, node.node_id] = frames
        async with ws_client(node.ws_url) as ws:
            await ws.send({"action": "reconnect", "run_id": run_id, "last_event_index": 0})
            while True:
                frame = await ws.recv()
                frames.append(frame)
                if frame.get("event") == "subscribed":
                    break
                assert frame.get("event") == "catch_up" or "event_index" in frame, frame
            task_status.started()
            frames += await ws.recv_until_terminal()

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            run_ids = [await nursery.start(starter) for _ in range(SIGTERM_RUNS)]
            for run_id in run_ids:
                for node in others:
                    await nursery.start(follower, node, run_id)
            await trio.to_thread.run_sync(stop_node_cleanly, cluster, victim)

    assert "shutdown: cancelled 3 running runs" in cluster.log_of(victim)
    for run_id in run_ids:
        events = starters[run_id]
        assert [e["event_index"] for e in events] == list(range(len(events)))
        assert [e["event"] for e in events[-2:]] == ["WorkflowCancelled", "WorkflowCompleted"]
        assert events[-2]["reason"] == "server shutting down", events[-2]
        assert len(events) < EVENTS_PER_RUN  # cancelled, not run to its end
        assert closes[run_id] == 1001
        for node in others:
            frames = followed[run_id, node.node_id]
            live = events_only(frames)
            assert [e["event_index"] for e in live] == list(range(1, len(events))), node.node_id
            assert live == events[1:], f"{node.node_id} saw other events of {run_id}"
            assert [f["event"] for f in frames if "event_index" not in f][-1] == "subscribed"

    # the others go on serving: a new run on each, followed on the other one, runs to its end
    async with httpx.AsyncClient(timeout=10) as http:
        for node in others:
            assert (await http.get(f"{node.url}/health")).status_code == 200
            for run_id in run_ids:
                record = (await http.get(f"{node.url}/runs/{run_id}")).json()
                assert (record["status"], record["event_count"], record["node"]) == (
                    "CANCELLED", len(starters[run_id]), victim.node_id
                )

    async def run_after_the_stop(node: Node, watcher: Node) -> None:
        async with ws_client(node.ws_url) as ws:
            first = await ws.start(message="after the stop")
            async with ws_client(watcher.ws_url) as watch:
                await watch.send(
                    {"action": "reconnect", "run_id": first["run_id"], "last_event_index": 0}
                )
                watched = events_only(await watch.recv_until_terminal())
            own = [first, *await ws.recv_until_terminal()]
        assert [e["event_index"] for e in own] == list(range(EVENTS_PER_RUN))
        assert own[-1]["event"] == "WorkflowCompleted"
        assert watched == own[1:]

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_after_the_stop, others[0], others[1])
            nursery.start_soon(run_after_the_stop, others[1], others[0])


# --- graph runs read on another node -------------------------------------------------------------

GRAPH_ITERATIONS = 150  # passes enough for the background run to be seen running on another node


async def test_graph_status_and_state_are_served_by_a_node_that_does_not_run_the_graph(
    redis_url: str, start_cluster: StartCluster
) -> None:
    cluster = start_cluster(redis_url, 3, "--graph-max-iterations", "1000")
    a, b, c = cluster.nodes
    definition = code_review_graph()
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b.url, timeout=30) as on_b,
        httpx.AsyncClient(base_url=c.url, timeout=30) as on_c,
    ):
        graph_id = await create_graph(on_a, definition)
        saved = (await on_a.get(f"/graph/{graph_id}")).json()
        assert (saved["graph_id"], saved["name"]) == (graph_id, definition["name"])
        for http in (on_b, on_c):
            answer = await http.get(f"/graph/{graph_id}")
            assert answer.status_code == 200, answer.text
            assert answer.json() == saved

        # a run to its end on A (a waiting run), then read on B and C
        initial = {"code": UNFIXABLE_CODE, "threshold": 7, "max_iterations": 2}
        answer = await on_a.post("/graph/run", json={"graph_id": graph_id, "initial_state": initial})
        assert answer.status_code == 200, answer.text
        done = answer.json()
        assert done["status"] == "completed", done
        for http in (on_b, on_c):
            status = await http.get(f"/graph/background/{done['run_id']}/status")
            assert status.status_code == 200, status.text
            assert status.json() == {
                "run_id": done["run_id"], "task_status": "completed",
                "workflow_status": "completed", "current_node": "END",
            }
            state = await http.get(f"/graph/state/{done['run_id']}")
            assert state.status_code == 200, state.text
            assert state.json() == {
                "run_id": done["run_id"], "status": "completed", "current_node": "END",
                "state": done["final_state"], "execution_log": done["execution_log"],
            }

        # a background run on A (of the graph created on A), polled on B while it runs
        initial = {"code": UNFIXABLE_CODE, "threshold": 7, "max_iterations": GRAPH_ITERATIONS}
        run_id = await start_background(on_a, graph_id, initial)
        seen_running, log_lengths = 0, []
        with trio.fail_after(30):
            while True:
                status = await on_b.get(f"/graph/background/{run_id}/status")
                assert status.status_code == 200, status.text
                body = status.json()
                if body["task_status"] == "completed":
                    break
                assert body["task_status"] == "running", body
                assert body["workflow_status"] == "running" and body["current_node"], body
                state = await on_b.get(f"/graph/state/{run_id}")
                assert state.status_code == 200, state.text
                view = state.json()
                if view["status"] == "running":
                    seen_running += 1
                    assert view["state"]["code"] == UNFIXABLE_CODE
                    log_lengths.append(len(view["execution_log"]))
        assert seen_running > 0, "the run was never seen running on B"
        assert log_lengths == sorted(log_lengths), "B's view of the run went backwards"
        views = [(await http.get(f"/graph/state/{run_id}")).json() for http in (on_a, on_b, on_c)]
        assert views[0] == views[1] == views[2]
        final = views[0]
        assert (final["status"], final["current_node"]) == ("completed", "END")
        assert final["state"]["max_iterations"] == GRAPH_ITERATIONS
        assert len(final["execution_log"]) == 1 + 4 * GRAPH_ITERATIONS + 1  # extract, passes, SYSTEM
        assert len(final["execution_log"]) > max(log_lengths)

        # a run on B of the graph created on A, read on C and A
        answer = await on_b.post(
            "/graph/run", json={"graph_id": graph_id, "initial_state": {"code": "x = 1\n"}}
        )
        assert answer.status_code == 200, answer.text
        done = answer.json()
        for http in (on_c, on_a):
            state = (await http.get(f"/graph/state/{done['run_id']}")).json()
            assert (state["status"], state["state"], state["execution_log"]) == (
                done["status"], done["final_state"], done["execution_log"]
            )
        record = (await on_c.get(f"/runs/{done['run_id']}")).json()
        assert (record["node"], record["workflow_id"]) == (b.node_id, graph_id)
