"""`raw_websocket(url)`: a WebSocket client (wsproto over a trio TCP stream) that can also send
frames no well-behaved client library would, such as a text frame whose payload is not UTF-8,
and that reports the code of the server's Close (1006 when the connection ended without one)."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Event, Request, TextMessage

NO_CLOSE_FRAME = 1006  # RFC 6455 §7.1.5: the connection closed without a Close frame


def client_text_frame(payload: bytes, *, masked: bool = True) -> bytes:
    """A final text frame (FIN, opcode 1) carrying `payload` byte for byte, masked as RFC 6455
    has a client send it unless `masked` is false."""
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        header = bytes((0x81, mask_bit | length))
    elif length < 65536:
        header = bytes((0x81, mask_bit | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, mask_bit | 127)) + length.to_bytes(8, "big")
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


class RawWebSocket:
    def __init__(self, stream: trio.SocketStream, connection: WSConnection) -> None:
        self.stream = stream
        self.connection = connection
        self._events: deque[Event] = deque()

    async def next_event(self) -> Event:
        while not self._events:
            try:
                data: bytes | None = await self.stream.receive_some(65536) or None
            except trio.BrokenResourceError:
                data = None
            self.connection.receive_data(data)
            self._events.extend(self.connection.events())
        return self._events.popleft()

    async def send_raw(self, frame: bytes) -> None:
        await self.stream.send_all(frame)

    async def receive_text(self) -> str:
        """The next whole text message."""
        parts: list[str] = []
        while True:
            event = await self.next_event()
            if isinstance(event, CloseConnection):
                raise AssertionError(f"closed with {event.code} while a message was awaited")
            if isinstance(event, TextMessage):
                parts.append(event.data)
                if event.message_finished:
                    return "".join(parts)

    async def close_code(self) -> int:
        """The code of the server's Close, skipping messages before it; `NO_CLOSE_FRAME` if the
        connection ended without one."""
        while True:
            event = await self.next_event()
            if isinstance(event, CloseConnection):
                return event.code


@asynccontextmanager
async def raw_websocket(url: str) -> AsyncIterator[RawWebSocket]:
    """Open the WebSocket at `url` (`ws://host:port/path`) and complete the handshake."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    stream = await trio.open_tcp_stream(parts.hostname, parts.port)
    async with stream:
        connection = WSConnection(ConnectionType.CLIENT)
        socket = RawWebSocket(stream, connection)
        await stream.send_all(connection.send(Request(host=parts.netloc, target=parts.path)))
        accepted = await socket.next_event()
        assert isinstance(accepted, AcceptConnection), accepted
        yield socket
