"""web/asgi_websocket.py: the WebSocket interface over plain ASGI messages. The ASGI `receive` and
`send` here are what Hypercorn hands an app: one queue of messages in, a list of messages out.
(`/workflows/ws` runs on it in every test of tests/web/test_workflows_ws.py, over real sockets.)"""

from __future__ import annotations

from typing import Any

import pytest

from web.asgi_websocket import AsgiWebSocket, WebSocketDisconnected


def socket_with(incoming: list[dict[str, Any]], headers: list[tuple[bytes, bytes]] | None = None
                ) -> tuple[AsgiWebSocket, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    pending = list(incoming)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/workflows/ws", "headers": headers or []}
    return AsgiWebSocket(scope, receive, send), sent


def test_headers_are_found_whatever_their_case_and_absent_ones_are_empty() -> None:
    socket, _ = socket_with([], [(b"authorization", b"Bearer t0k"), (b"X-Other", b"1")])
    assert socket.header("Authorization") == "Bearer t0k"
    assert socket.header("x-other") == "1"
    assert socket.header("Cookie") == ""


async def test_accept_answers_the_connect_then_messages_come_as_text_or_bytes() -> None:
    socket, sent = socket_with([
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": '{"action": "ping"}'},
        {"type": "websocket.receive", "text": ""},
        {"type": "websocket.receive", "bytes": b"\x00\x01"},
        {"type": "websocket.disconnect", "code": 1001},
    ])
    await socket.accept()
    assert [await socket.receive() for _ in range(3)] == ['{"action": "ping"}', "", b"\x00\x01"]
    with pytest.raises(WebSocketDisconnected) as gone:
        await socket.receive()
    assert gone.value.code == 1001
    await socket.send("hello")
    await socket.close(1008, "unauthorized")
    assert sent == [
        {"type": "websocket.accept"},
        {"type": "websocket.send", "text": "hello"},
        {"type": "websocket.close", "code": 1008, "reason": "unauthorized"},
    ]


async def test_a_client_gone_before_the_accept_is_not_accepted() -> None:
    socket, sent = socket_with([{"type": "websocket.disconnect", "code": 1006}])
    with pytest.raises(WebSocketDisconnected):
        await socket.accept()
    assert sent == []
