"""web/asgi_websocket.py: the WebSocket interface over plain ASGI messages. The ASGI `receive` and
`send` here are what Hypercorn hands an app: one queue of messages in, a list of messages out.
(`/workflows/ws` runs on it in every test of tests/web/test_workflows_ws.py, over real sockets.)"""

from __future__ import annotations

from typing import Any

import pytest

from web.asgi_websocket import SEND_TEXTS, AsgiWebSocket, WebSocketDisconnected


def socket_with(incoming: list[dict[str, Any]], headers: list[tuple[bytes, bytes]] | None = None,
                extensions: dict[str, Any] | None = None,
                ) -> tuple[AsgiWebSocket, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    pending = list(incoming)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/workflows/ws", "headers": headers or []}
    if extensions is not None:
        scope["extensions"] = extensions
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


async def test_send_many_is_one_message_where_the_server_offers_send_texts() -> None:
    socket, sent = socket_with([], extensions={"websocket.http.response": {}, SEND_TEXTS: {}})
    await socket.send_many(["a", "b", "c"])
    assert sent == [{"type": SEND_TEXTS, "texts": ["a", "b", "c"]}]


@pytest.mark.parametrize("extensions", [None, {"websocket.http.response": {}}])
async def test_send_many_sends_one_by_one_on_other_servers(extensions: dict[str, Any] | None) -> None:
    socket, sent = socket_with([], extensions=extensions)
    await socket.send_many(["a", "b"])
    assert sent == [{"type": "websocket.send", "text": "a"}, {"type": "websocket.send", "text": "b"}]
