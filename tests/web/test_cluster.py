"""Several `runcast serve` processes on one real redis-server (tests/conftest.py `start_cluster`):
a run started on one node is followed, replayed and cancelled through the others."""

from __future__ import annotations

from tests.clients import events_only, ws_client
from tests.conftest import RedisServer, StartCluster


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
