"""`AsgiWebSocket`: a server WebSocket spoken in plain ASGI messages, for the WebSocket routes
runcast serves in front of Quart (`/workflows/ws` and `/ws/graph/run/{graph_id}`).

Quart wraps every WebSocket in its own request context, a receive task and channel, and signals
on every message; for `/workflows/ws`, which carries every run event, that was a few percent of
the server's CPU. `WebSocketLike` (send, send_many, receive, close) is the interface the routes
use a connection through; `AsgiWebSocket` is it straight on the ASGI `receive`/`send` of the
connection. `receive` raises `WebSocketDisconnected` when the client has gone, where Quart
cancelled the handler instead.

`send_many` hands several text messages to the server at once when the server offers the
`runcast.websocket.send_texts` extension (runcast's own transport, `web.transport`, does: it frames
them all into one write); on any other server it sends them one by one. `refuse` answers a
handshake with an HTTP error instead of accepting it, over the `websocket.http.response` extension
(Hypercorn offers it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Protocol

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

SEND_TEXTS = "runcast.websocket.send_texts"  # the extension, and the type of its message


class WebSocketLike(Protocol):
    """A server-side WebSocket connection, as the routes use it."""

    async def send(self, data: str) -> None: ...

    async def send_many(self, texts: Sequence[str]) -> None: ...

    async def receive(self) -> str | bytes: ...

    async def close(self, code: int, reason: str = "") -> None: ...


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
        self._sends_texts = SEND_TEXTS in scope.get("extensions", {})

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

    async def refuse(self, status: int, body: bytes) -> None:
        """Take the client's connect and answer the handshake with the HTTP `status` and the JSON
        `body` instead of accepting it (the server's `websocket.http.response` extension)."""
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            return
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await self._send(
            {"type": "websocket.http.response.start", "status": status, "headers": headers}
        )
        await self._send({"type": "websocket.http.response.body", "body": body})

    async def send(self, data: str) -> None:
        await self._send({"type": "websocket.send", "text": data})

    async def send_many(self, texts: Sequence[str]) -> None:
        """Send `texts` as text messages, in order."""
        if self._sends_texts:
            await self._send({"type": SEND_TEXTS, "texts": texts})
        else:
            for text in texts:
                await self.send(text)

    async def receive(self) -> str | bytes:
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnected(message.get("code", 1005))
        text = message.get("text")
        return text if text is not None else bytes(message.get("bytes") or b"")

    async def close(self, code: int, reason: str = "") -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})
