"""A lean WebSocket client for the harness: wsproto over a trio TCP stream, nothing else.

trio-websocket spends about 100-165 us of CPU per received message here (a reader task, a
memory channel and a checkpoint per message); on a 2-core machine that CPU is taken from the
server being measured. This client decodes whatever one `receive_some` brought in one go and
hands messages out from a local queue, so it costs a fraction of that. It offers the part of
trio-websocket's interface the scenarios use: `open_websocket_url`, `get_message`,
`send_message`, and `ConnectionClosed` when the server has closed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

RECEIVE_BYTES = 256 * 1024
CLOSE_WAIT = 2.0  # seconds to wait for the server's Close after ours


class ConnectionClosed(Exception):
    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"WebSocket closed ({code}: {reason or ''})")
        self.code = code
        self.reason = reason


class LeanWebSocket:
    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._messages: deque[str] = deque()
        self._parts: list[str] = []
        self.closed: ConnectionClosed | None = None

    async def _handshake(self, host: str, target: str) -> None:
        await self._stream.send_all(self._ws.send(Request(host=host, target=target)))
        while True:
            data = await self._stream.receive_some(RECEIVE_BYTES)
            if not data:
                raise ConnectionClosed(None, "closed during the handshake")
            self._ws.receive_data(data)
            events = self._ws.events()
            for event in events:
                if isinstance(event, AcceptConnection):
                    # the server's first messages may have come in the same read
                    await self._handle_events(events)
                    return
                if isinstance(event, RejectConnection):
                    raise ConnectionClosed(event.status_code, "handshake rejected")

    async def get_message(self) -> str:
        while not self._messages:
            if self.closed is not None:
                raise self.closed
            data = await self._stream.receive_some(RECEIVE_BYTES)
            if not data:
                self.closed = self.closed or ConnectionClosed(1006, "connection lost")
                continue
            self._ws.receive_data(data)
            await self._handle_events(self._ws.events())
        return self._messages.popleft()

    async def _handle_events(self, events: Iterator[Event]) -> None:
        for event in events:
            if isinstance(event, TextMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    self._messages.append("".join(self._parts))
                    self._parts.clear()
            elif isinstance(event, CloseConnection):
                if self.closed is None:
                    self.closed = ConnectionClosed(event.code, event.reason)
                    await self._stream.send_all(self._ws.send(event.response()))
            elif isinstance(event, Ping):
                await self._stream.send_all(self._ws.send(event.response()))

    async def send_message(self, text: str) -> None:
        if self.closed is not None:
            raise self.closed
        await self._stream.send_all(self._ws.send(Message(data=text)))

    async def aclose(self) -> None:
        """Close with 1000 and wait briefly for the server's Close, then drop the stream."""
        try:
            if self.closed is None:
                self.closed = ConnectionClosed(1000, "closed by the client")
                await self._stream.send_all(self._ws.send(CloseConnection(code=1000)))
                with trio.move_on_after(CLOSE_WAIT):
                    while True:
                        data = await self._stream.receive_some(RECEIVE_BYTES)
                        if not data:
                            break
                        self._ws.receive_data(data)
                        for _ in self._ws.events():  # read and drop until the server closes
                            pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await self._stream.aclose()


@asynccontextmanager
async def open_websocket_url(url: str) -> AsyncIterator[LeanWebSocket]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stream = await trio.open_tcp_stream(host, port)
    websocket = LeanWebSocket(stream)
    try:
        await websocket._handshake(f"{host}:{port}", parts.path or "/")
    except BaseException:
        await stream.aclose()
        raise
    try:
        yield websocket
    finally:
        await websocket.aclose()
