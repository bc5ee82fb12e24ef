from tests.clients import events_only, ws_client
from tests.conftest import RunningServer


async def test_a_started_run_streams_42_events_then_replays(server: RunningServer) -> None:
    async with ws_client(server.ws_url) as client:
        started = await client.start(message="x")
        frames = [started, *await client.recv_until_terminal()]
    assert [f["event_index"] for f in frames] == list(range(42))
    async with ws_client(server.ws_url) as client:
        await client.send({"action": "reconnect", "run_id": started["run_id"], "last_event_index": 7})
        header = await client.recv()
        replay = events_only(await client.recv_until_terminal())
    assert header["event"] == "replay" and header["total_events"] == 42
    assert replay == frames
