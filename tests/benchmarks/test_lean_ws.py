"""The harness's lean WebSocket client (benchmarks/lean_ws.py) against a real runcast server."""

from __future__ import annotations

import time

import orjson
import pytest
import trio

from benchmarks.lean_ws import ConnectionClosed, open_websocket_url
from tests.conftest import RunningServer


async def test_it_gets_the_first_frame_sent_with_the_handshake_and_answers(server: RunningServer) -> None:
    """`connected` often arrives in the same read as the handshake answer: it must not be lost."""
    with trio.fail_after(10):
        async with open_websocket_url(server.ws_url) as ws:
            assert orjson.loads(await ws.get_message())["event"] == "connected"
            await ws.send_message('{"action": "ping"}')
            assert orjson.loads(await ws.get_message()) == {"event": "pong"}


async def test_it_reads_a_whole_run_in_order(server: RunningServer) -> None:
    with trio.fail_after(20):
        async with open_websocket_url(server.ws_url) as ws:
            await ws.get_message()
            start = {"action": "start-workflow", "workflow_id": "content-creation-workflow"}
            await ws.send_message(orjson.dumps(start).decode())
            indices = []
            while True:
                event = orjson.loads(await ws.get_message())
                indices.append(event["event_index"])
                if event["event"] == "WorkflowCompleted":
                    break
    assert indices == list(range(42))


async def test_a_server_close_raises_connection_closed_with_its_code(server: RunningServer) -> None:
    with trio.fail_after(20):
        async with open_websocket_url(server.ws_url) as ws:
            await ws.get_message()
            await server.stop()  # the server closes every socket with 1001
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.get_message()
    assert closed.value.code == 1001


async def test_a_timeout_ends_a_wait_for_a_message_but_not_the_socket(server: RunningServer) -> None:
    with trio.fail_after(20):
        async with open_websocket_url(server.ws_url) as ws:
            await ws.get_message(timeout=5)  # connected
            with pytest.raises(trio.TooSlowError):
                await ws.get_message(timeout=0.2)  # nothing more comes unasked
            await ws.send_message('{"action": "ping"}')
            assert orjson.loads(await ws.get_message(timeout=5)) == {"event": "pong"}


async def test_stamped_arrivals_are_the_kernels_receive_times(server: RunningServer) -> None:
    with trio.fail_after(20):
        async with open_websocket_url(server.ws_url, stamp_arrivals=True) as ws:
            await ws.get_message(timeout=5)  # connected (may come with the handshake: no stamp)
            stamped = 0
            for _ in range(200):
                asked = time.time()
                await ws.send_message('{"action": "ping"}')
                assert orjson.loads(await ws.get_message(timeout=5)) == {"event": "pong"}
                read = time.time()
                if ws.arrived_at is None:
                    # Linux turns receive timestamps on a moment after the first socket asks
                    assert stamped == 0, "a message without a stamp after stamped ones"
                    continue
                assert asked - 0.001 <= ws.arrived_at <= read + 0.001  # the clocks' resolutions
                stamped += 1
                if stamped == 20:
                    break
            assert stamped == 20
        async with open_websocket_url(server.ws_url) as plain:
            await plain.get_message(timeout=5)
            assert plain.arrived_at is None
