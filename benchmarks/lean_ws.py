"""A lean WebSocket client for the harness: wsproto over a trio TCP stream, nothing else.

trio-websocket spends about 100-165 us of CPU per received message here (a reader task, a
memory channel and a checkpoint per message); on a 2-core machine that CPU is taken from the
server being measured. This client decodes whatever one `receive_some` brought in one go and
hands messages out from a local queue, and reads the server's frames with `ServerFrameDecoder`
(wsproto makes the handshake and the frames the client sends). It offers the part of
trio-websocket's interface the scenarios use: `open_websocket_url`, `get_message`,
`send_message`, and `ConnectionClosed` when the server has closed.

`open_websocket_url(url, stamp_arrivals=True)` also notes when the kernel received each message
(`SO_TIMESTAMP`, `arrived_at`): how late the server delivered it, whatever the client was busy
with when the bytes came. A client process reading hundreds of sockets that got their events in
the same millisecond reaches the last of them tens of milliseconds later. Linux turns receive
timestamps on a moment after the first socket of the machine asks for them; what arrives before
has no stamp (`arrived_at` None).
"""

from __future__ import annotations

import math
import socket
import struct
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Pong,
    RejectConnection,
    Request,
)

from benchmarks.server_frames import Close, Ping, ServerFrameDecoder

RECEIVE_BYTES = 256 * 1024
CLOSE_WAIT = 2.0  # seconds to wait for the server's Close after ours
MAX_RESPONSE_HEAD = 64 * 1024
SO_TIMESTAMP = 29  # Linux's SO_TIMESTAMP_OLD (x86 and asm-generic); the sockets module lacks it
TIMEVAL = struct.Struct("qq")  # its message: the receive time as seconds and microseconds


class ConnectionClosed(Exception):
    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"WebSocket closed ({code}: {reason or ''})")
        self.code = code
        self.reason = reason


class LeanWebSocket:
    def __init__(self, stream: trio.SocketStream, *, stamp_arrivals: bool = False) -> None:
        self._stream = stream
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._frames = ServerFrameDecoder()
        self._messages: deque[str] = deque()
        self.closed: ConnectionClosed | None = None
        # with stamp_arrivals: the kernel's receive time of each queued message (None for those
        # read with the handshake), and of the message `get_message` returned last
        self._arrivals: deque[float | None] | None = None
        self.arrived_at: float | None = None
        if stamp_arrivals:
            stream.socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
            self._arrivals = deque()

    async def _handshake(self, host: str, target: str) -> None:
        """The upgrade request and the server's answer; frames that came in the same read as the
        answer go to the frame decoder."""
        await self._stream.send_all(self._ws.send(Request(host=host, target=target)))
        received = b""
        while (end := received.find(b"\r\n\r\n")) < 0:
            if len(received) > MAX_RESPONSE_HEAD:
                raise ConnectionClosed(None, "the handshake answer has no end")
            data = await self._stream.receive_some(RECEIVE_BYTES)
            if not data:
                raise ConnectionClosed(None, "closed during the handshake")
            received += data
        self._ws.receive_data(received[: end + 4])
        for event in self._ws.events():
            if isinstance(event, AcceptConnection):
                await self._handle(received[end + 4 :], None)
                return
            if isinstance(event, RejectConnection):
                raise ConnectionClosed(event.status_code, "handshake rejected")
        raise ConnectionClosed(None, "the handshake answer is neither an accept nor a reject")

    async def get_message(self, timeout: float = math.inf) -> str:
        """The next text message; trio.TooSlowError if none has come after `timeout` seconds
        (a deadline set only when there is nothing buffered to return)."""
        if not self._messages:
            with trio.fail_after(timeout):
                while not self._messages:
                    if self.closed is not None:
                        raise self.closed
                    if self._arrivals is None:
                        data, arrival = await self._stream.receive_some(RECEIVE_BYTES), None
                    else:
                        data, arrival = await self._receive_stamped()
                    if not data:
                        self.closed = self.closed or ConnectionClosed(1006, "connection lost")
                        continue
                    await self._handle(data, arrival)
        if self._arrivals is not None:
            self.arrived_at = self._arrivals.popleft()
        return self._messages.popleft()

    async def _receive_stamped(self) -> tuple[bytes, float | None]:
        """What `receive_some` would read, and the kernel's receive time of it."""
        try:
            data, ancillary, _, _ = await self._stream.socket.recvmsg(
                RECEIVE_BYTES, socket.CMSG_SPACE(TIMEVAL.size)
            )
        except OSError as error:
            raise trio.BrokenResourceError(error) from error
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMP:
                seconds, microseconds = TIMEVAL.unpack(payload[: TIMEVAL.size])
                return data, seconds + microseconds / 1e6
        return data, None

    async def _handle(self, data: bytes, arrival: float | None) -> None:
        for received in self._frames.feed(data):
            if isinstance(received, str):
                self._messages.append(received)
                if self._arrivals is not None:
                    self._arrivals.append(arrival)
            elif isinstance(received, Close):
                if self.closed is None:
                    self.closed = ConnectionClosed(received.code, received.reason)
                    await self._stream.send_all(self._ws.send(CloseConnection(code=received.code)))
            elif isinstance(received, Ping):
                await self._stream.send_all(self._ws.send(Pong(payload=received.payload)))

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
                        self._frames.feed(data)  # read and drop until the server closes
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await self._stream.aclose()


@asynccontextmanager
async def open_websocket_url(
    url: str, *, stamp_arrivals: bool = False
) -> AsyncIterator[LeanWebSocket]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stream = await trio.open_tcp_stream(host, port)
    websocket = LeanWebSocket(stream, stamp_arrivals=stamp_arrivals)
    try:
        await websocket._handshake(f"{host}:{port}", parts.path or "/")
    except BaseException:
        await stream.aclose()
        raise
    try:
        yield websocket
    finally:
        await websocket.aclose()
