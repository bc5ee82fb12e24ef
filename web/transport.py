"""`serve(app, config)`: Hypercorn's trio worker, with a send path that coalesces writes.

Hypercorn keeps its protocol (h11, wsproto, the ASGI streams) apart from its trio backend, and
this module replaces only the backend's write side. Stock Hypercorn makes one `send` system call
per WebSocket frame, with the sending task waiting for it: on loopback that call is a quarter of a
busy server's CPU. Here every frame a connection's tasks hand over is appended to that
connection's outgoing buffer, and one flush task per connection writes everything buffered so far
in a single `send_all`, then whatever arrived meanwhile, until the buffer is empty.

A WebSocket app's text messages also skip Hypercorn's per-message layers (the ASGI stream, wsproto,
the HTTP/1.1 protocol): while the socket is open, `text_frame` frames the text (a final,
unmasked, uncompressed text frame, as RFC 6455 has a server send it) straight into the buffer.
The transport also offers WebSocket apps the ASGI extension `runcast.websocket.send_texts`: a
message `{"type": "runcast.websocket.send_texts", "texts": [...]}` sends several text messages,
framed together into the buffer in one step (a catch-up of 1,000 events is one call, not 1,000).
Anything else (binary messages, accept, close, a socket that is closing, HTTP/2) goes through
Hypercorn as before, a batch of texts as one `websocket.send` each. Text frames are never
compressed here, also when the client negotiated permessage-deflate: RFC 7692 lets a sender
leave any message uncompressed.

What stays as it was:
- order: one buffer and at most one flush task per connection, so bytes leave in the order they
  were handed over;
- back-pressure: a task handing over bytes while more than `HIGH_WATER` bytes wait for a slow
  client blocks until the flush has written them;
- close: closing a connection first waits for its buffer to be written;
- a broken connection: the flush drops what is buffered and tells the protocol it is closed,
  as Hypercorn does when a send fails.

One change to Hypercorn's reading side, `_FailingWSStream`: a client frame wsproto cannot accept
(invalid UTF-8 in a text message, or another protocol error) gets a Close frame with wsproto's
code (1007, 1002) before the connection closes, where Hypercorn closed TCP without one.

Only plain HTTP listeners (`config.bind`); runcast binds loopback and serves no TLS itself.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.ws_stream import ASGIWebsocketState, FrameTooLargeError, WSStream
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.statsd import StatsdLogger
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import (
    AppWrapper,
    ASGIReceiveCallable,
    ASGISendCallable,
    ASGISendEvent,
    ConnectionState,
    Framework,
    LifespanState,
    Scope,
)
from hypercorn.utils import repr_socket_addr, wrap_app
from wsproto.connection import ConnectionState as WebSocketState
from wsproto.events import CloseConnection, Message, Ping
from wsproto.frame_protocol import CloseReason

from web.asgi_websocket import SEND_TEXTS

# Bytes a connection may have waiting before senders wait for the flush. A catch-up of 1,000
# events (about 250 KB) then goes into the buffer in one go: at 64 KiB its sender waited for
# four flushes, each a pass of a busy scheduler, and `reconnect-storm` measured a p50 of 58 ms
# (p99 290 ms) from reading `reconnect` to the backlog being buffered; with 256 KiB, 26 ms
# (p99 96 ms). At most this much per connection waits for a client that does not read.
HIGH_WATER = 256 * 1024


def text_frame(text: str) -> bytes:
    """A server's WebSocket frame for one whole text message (FIN, opcode 1, no mask)."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        header = bytes((0x81, length))
    elif length < 65536:
        header = b"\x81\x7e" + length.to_bytes(2, "big")
    else:
        header = b"\x81\x7f" + length.to_bytes(8, "big")
    return header + payload


class CoalescingTCPServer(TCPServer):
    """One connection: Hypercorn's reader and protocol, a coalescing writer."""

    def __init__(self, app: AppWrapper, *args: Any) -> None:
        super().__init__(_TextFrameShortcut(app, self), *args)
        self._plain_app = app
        self._outgoing: list[bytes] = []
        self._outgoing_bytes = 0
        self._flushed = trio.Event()
        self._flushed.set()

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            self._unlink()

    def _unlink(self) -> None:
        """Drop the references that make a finished connection a reference cycle (the protocol
        holds `protocol_send`, the app shortcut holds the connection), so that its objects are
        freed as soon as it ends. Left to the garbage collector, 10,000 connections opened and
        closed in `hold` were 32 objects each, and the young collections over them took 50 -
        115 ms."""
        self.__dict__.pop("protocol", None)
        self.app = self._plain_app

    async def protocol_send(self, event: Event) -> None:
        if not isinstance(event, RawData):
            if isinstance(event, Closed):
                await self._flushed.wait()
            await super().protocol_send(event)
            return
        await self._write(event.data)

    async def send_websocket_message(
        self, hypercorn_send: ASGISendCallable, message: ASGISendEvent
    ) -> None:
        """A WebSocket app's `send`: text straight into the buffer while the socket is open; the
        accept makes the stream a `_FailingWSStream`."""
        kind = message["type"]
        if kind == SEND_TEXTS:
            texts: Sequence[str] = message["texts"]  # type: ignore[typeddict-item]
            if self._frames_directly(hypercorn_send):
                await self._write(b"".join([text_frame(text) for text in texts]))
            else:
                for text in texts:
                    await hypercorn_send({"type": "websocket.send", "text": text})
        elif (
            kind == "websocket.send"
            and message.get("bytes") is None
            and isinstance(text := message.get("text"), str)
            and self._frames_directly(hypercorn_send)
        ):
            await self._write(text_frame(text))
        else:
            if kind == "websocket.accept":
                _fail_as_rfc_6455_says(hypercorn_send)
            await hypercorn_send(message)

    def _frames_directly(self, hypercorn_send: ASGISendCallable) -> bool:
        """Whether this connection's WebSocket is open over HTTP/1.1, so that frames may go
        straight into the buffer."""
        stream = getattr(hypercorn_send, "__self__", None)
        return (
            isinstance(stream, WSStream)
            and isinstance(self.protocol.protocol, H11Protocol)
            and stream.state is ASGIWebsocketState.CONNECTED
            and not stream.closed
            and stream.connection.state is WebSocketState.OPEN
        )

    async def _write(self, data: bytes) -> None:
        self._outgoing.append(data)
        self._outgoing_bytes += len(data)
        if self._flushed.is_set():
            self._flushed = trio.Event()
            self._task_group.spawn(self._flush)
        if self._outgoing_bytes > HIGH_WATER:
            await self._flushed.wait()

    async def _flush(self) -> None:
        broken = False
        try:
            while self._outgoing and not broken:
                data = b"".join(self._outgoing)
                self._outgoing.clear()
                self._outgoing_bytes = 0
                async with self.send_lock:
                    try:
                        with trio.CancelScope(shield=True):
                            await self.stream.send_all(data)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        broken = True
        finally:
            if broken:
                self._outgoing.clear()
                self._outgoing_bytes = 0
            self._flushed.set()
        if broken:  # after `_flushed`: handling Closed may close the connection, which waits on it
            await self.protocol.handle(Closed())


class _FailingWSStream(WSStream):
    """Hypercorn's WebSocket stream, failing the connection as RFC 6455 says (§7.1.7, §8.1).

    When wsproto cannot accept a client's frame (invalid UTF-8 in a text message: 1007; another
    protocol error: 1002), it yields a `CloseConnection` with that code while the connection is
    still open. Hypercorn 0.18 sends a Close only in answer to the client's own Close, so it then
    dropped the TCP connection without one and the client saw 1006. `_handle_events` is Hypercorn
    0.18's, plus the branch that sends wsproto's Close first; nothing else differs.
    """

    async def _handle_events(self) -> None:
        for event in self.connection.events():
            if isinstance(event, Message):
                try:
                    self.buffer.extend(event)
                except FrameTooLargeError:
                    await self._send_wsproto_event(
                        CloseConnection(code=CloseReason.MESSAGE_TOO_BIG)
                    )
                    break
                if event.message_finished:
                    await self.app_put(self.buffer.to_message())  # type: ignore[misc]
                    self.buffer.clear()
            elif isinstance(event, Ping):
                await self._send_wsproto_event(event.response())
            elif isinstance(event, CloseConnection):
                if self.connection.state is WebSocketState.REMOTE_CLOSING:
                    await self._send_wsproto_event(event.response())
                elif self.connection.state is WebSocketState.OPEN:  # wsproto failed it
                    await self._send_wsproto_event(event)
                await self.send(StreamClosed(stream_id=self.stream_id))


def _fail_as_rfc_6455_says(hypercorn_send: ASGISendCallable) -> None:
    """Make the WebSocket stream behind `hypercorn_send` a `_FailingWSStream`, as the app accepts
    it (no frame is read before). Hypercorn builds its streams itself (`H11Protocol`, `H2Protocol`)
    and offers no way to pass another class; the subclass adds no state, so changing the class of
    this one stream is all it takes, without patching Hypercorn for every server in the process."""
    stream = getattr(hypercorn_send, "__self__", None)
    if type(stream) is WSStream:
        stream.__class__ = _FailingWSStream


class _TextFrameShortcut:
    """The app as one connection runs it: a WebSocket app's `send` is that connection's
    `send_websocket_message` in front of Hypercorn's."""

    def __init__(self, app: AppWrapper, connection: CoalescingTCPServer) -> None:
        self.app = app
        self.connection = connection

    async def __call__(
        self,
        scope: Scope,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
        sync_spawn: Callable[..., Any],
        call_soon: Callable[..., Any],
    ) -> None:
        if scope["type"] == "websocket":
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), SEND_TEXTS: {}}}
            send = partial(self.connection.send_websocket_message, send)
        await self.app(scope, receive, send, sync_spawn, call_soon)


class BindFailed(OSError):
    """The server cannot listen where it was told to; the message names the address."""


def bind(config: Config) -> list[socket.socket]:
    """Listening sockets for `config.bind` (plain HTTP only); raises BindFailed."""
    try:
        sockets = config.create_sockets()
    except OSError as error:
        raise BindFailed(
            f"cannot listen on {', '.join(config.bind)}: {error.strerror or error}"
        ) from None
    if sockets.secure_sockets or sockets.quic_sockets:
        for sock in (*sockets.secure_sockets, *sockets.quic_sockets, *sockets.insecure_sockets):
            sock.close()
        raise ValueError("runcast's transport serves plain HTTP only: bind without TLS")
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
    return list(sockets.insecure_sockets)


async def serve(
    app: Framework,
    config: Config,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    sockets: list[socket.socket] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `sockets` (by default, `bind(config)`) until `shutdown_trigger` returns,
    then stop accepting, give open connections `config.graceful_timeout` seconds, and run the
    app's lifespan shutdown. `task_status.started` gets the bound addresses, e.g.
    `["http://127.0.0.1:7777"]`. The sockets are closed when it returns."""
    if sockets is None:
        sockets = bind(config)
    wrapped = wrap_app(app, config.wsgi_max_body_size, None)
    config.set_statsd_logger_class(StatsdLogger)
    lifespan_state: LifespanState = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    context = WorkerContext(None)
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as connections:
            listeners: list[trio.SocketListener] = []
            binds: list[str] = []
            for sock in sockets:
                listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
                binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
            connection = partial(
                CoalescingTCPServer, wrapped, config, context, ConnectionState(lifespan_state.copy())
            )
            async with trio.open_nursery() as accepting:
                accepting.start_soon(
                    partial(trio.serve_listeners, connection, listeners, handler_nursery=connections)
                )
                task_status.started(binds)
                await shutdown_trigger()
                accepting.cancel_scope.cancel()
            for listener in listeners:
                await listener.aclose()
            await context.terminated.set()
            connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
