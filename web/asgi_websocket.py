"""`AsgiWebSocket`: a server WebSocket spoken in plain ASGI messages, for the routes runcast serves
in front of Quart.

Quart wraps every WebSocket in its own request context, a receive task and channel, and signals
on every message; for `/workflows/ws`, which carries every run event, that was a few percent of
the server's CPU. This is the same interface (`WebSocketLike`: send, receive, close) straight on
the ASGI `receive`/`send` of the connection. `receive` raises `WebSocketDisconnected` when the
client has gone, where Quart cancelled the handler instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class WebSocketDisconnected(Exception):
    """The client closed the WebSocket or the connection went away."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the client disconnected (code {code})")
        self.code = code


class AsgiWebSocket:
    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send

    def header(self, name: str) -> str:
        """The request header `name` (case-insensitive), or "" if it is absent."""
        wanted = name.lower().encode("latin-1")
        for key, value in self.scope["headers"]:
            if key.lower() == wanted:
                return bytes(value).decode("latin-1")
        return ""

    async def accept(self) -> None:
        """Take the client's connect and accept it; WebSocketDisconnected if it left first."""
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnected(message.get("code", 1005))
        await self._send({"type": "websocket.accept"})

    async def send(self, data: str) -> None:
        await self._send({"type": "websocket.send", "text": data})

    async def receive(self) -> str | bytes:
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnected(message.get("code", 1005))
        text = message.get("text")
        return text if text is not None else bytes(message.get("bytes") or b"")

    async def close(self, code: int, reason: str = "") -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})
