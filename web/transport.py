"""`serve(app, config)`: Hypercorn's trio worker, on a stream that coalesces writes.

Hypercorn keeps its protocol code (h11, wsproto, the ASGI streams) apart from its trio backend,
whose `TCPServer` runs one connection over whatever trio stream it is given. Here each accepted
socket is wrapped in a `CoalescingStream`, as `trio.SSLStream` wraps its `transport_stream`, and
handed to Hypercorn's own `TCPServer`, unchanged. Stock Hypercorn makes one `send` system call
per WebSocket frame, with the sending task waiting for it: on loopback that call is a quarter of
a busy server's CPU. `CoalescingStream.send_all` appends the bytes to the connection's buffer and
returns; one flush task per connection writes everything buffered so far in a single `send_all`,
then whatever arrived meanwhile, until the buffer is empty.

A WebSocket app's text messages also skip Hypercorn's per-message layers (the ASGI stream,
wsproto, the HTTP/1.1 protocol): while the socket is open, `text_frame` frames the text (a final,
unmasked, uncompressed text frame, as RFC 6455 has a server send it) straight into the buffer.
The transport also offers WebSocket apps the ASGI extension `runcast.websocket.send_texts`: a
message `{"type": "runcast.websocket.send_texts", "texts": [...]}` sends several text messages,
framed together into the buffer in one step (a catch-up of 1,000 events is one call, not 1,000).
Anything else (binary messages, accept, close, a socket that is closing) goes through Hypercorn
as before, a batch of texts as one `websocket.send` each. Text frames are never compressed here,
also when the client negotiated permessage-deflate: RFC 7692 lets a sender leave any message
uncompressed. WebSockets over HTTP/2 (RFC 8441) are Hypercorn's alone, without the extension.

What stays as it was:
- order: one buffer and at most one flush task per connection, so bytes leave in the order they
  were handed over;
- back-pressure: a task handing over bytes while more than `HIGH_WATER` bytes wait for a slow
  client blocks until the flush has written them;
- close: Hypercorn half-closes a connection (`send_eof`) before it closes it, and that waits for
  the buffer to be written;
- a broken connection: the flush drops what is buffered and closes the socket, so that
  Hypercorn's reader ends the connection, as Hypercorn ends it when a send fails.

One change to Hypercorn's WebSocket handling, `_FailingConnection`: a client frame wsproto cannot
accept (invalid UTF-8 in a text message, or another protocol error) gets a Close frame with
wsproto's code (1007, 1002) before the connection closes, where Hypercorn closes TCP without one.

Beyond Hypercorn's `TCPServer(app, config, context, state, stream)`, its lifespan and its config,
this module touches three things of Hypercorn's, each on the line that does it, with the reason:
the WebSocket stream behind the app's `send` (`send.__self__`: its `closed`, `state` and
`connection`), the stream's `connection` it replaces, and the server's `protocol` it drops when
the connection ends. `pyproject.toml` pins the Hypercorn and wsproto releases this is tested on.

Only plain HTTP listeners (`config.bind`); runcast binds loopback and serves no TLS itself.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from functools import partial
from typing import Any, Protocol, cast

import trio
from hypercorn.config import Config
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
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
from wsproto.connection import Connection
from wsproto.connection import ConnectionState as WebSocketState
from wsproto.events import CloseConnection, Event

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


class CoalescingStream(trio.abc.HalfCloseableStream):
    """A connection's socket, whose writes are buffered and written by one flush task.

    Unlike a plain trio stream's, `send_all` may be called by several tasks at once; the bytes
    go out in the order of the calls. It returns as soon as the bytes are buffered, without a
    checkpoint, unless more than `HIGH_WATER` bytes wait: a checkpoint per frame would be a pass
    of the scheduler per frame. Bytes handed over after the EOF, or once the socket broke, are
    dropped."""

    def __init__(self, transport_stream: trio.SocketStream, nursery: trio.Nursery) -> None:
        self.transport_stream = transport_stream
        self.socket = transport_stream.socket  # Hypercorn's TCPServer reads the addresses here
        self._nursery = nursery  # where the flush runs
        self._outgoing: list[bytes] = []
        self._outgoing_bytes = 0
        self._flushed = trio.Event()
        self._flushed.set()
        self._writable = True

    def write(self, data: bytes) -> None:
        """Buffer `data` without waiting, starting a flush if none is running."""
        if not self._writable:
            return
        self._outgoing.append(data)
        self._outgoing_bytes += len(data)
        if self._flushed.is_set():
            self._flushed = trio.Event()
            self._nursery.start_soon(self._flush)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.write(bytes(data))
        if self._outgoing_bytes > HIGH_WATER:
            await self._flushed.wait()

    async def wait_send_all_might_not_block(self) -> None:
        if self._outgoing_bytes > HIGH_WATER:
            await self._flushed.wait()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.transport_stream.receive_some(max_bytes)

    async def send_eof(self) -> None:
        """Half-close the socket once everything buffered is written."""
        while not self._flushed.is_set():  # a write while waiting starts another flush
            await self._flushed.wait()
        self._writable = False
        await self.transport_stream.send_eof()

    async def aclose(self) -> None:
        """Close the socket now; what is still buffered is dropped."""
        self._writable = False
        await self.transport_stream.aclose()

    async def _flush(self) -> None:
        try:
            while self._outgoing:
                data = b"".join(self._outgoing)
                self._outgoing.clear()
                self._outgoing_bytes = 0
                await self.transport_stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._writable = False
            self._outgoing.clear()
            self._outgoing_bytes = 0
            await self.transport_stream.aclose()  # the reader's next receive fails: it ends
        finally:
            self._flushed.set()


class _FailingConnection:
    """wsproto's connection as Hypercorn's WebSocket stream uses it (`receive_data`, `events`,
    `send`, `state`), failing the connection as RFC 6455 says (§7.1.7, §8.1).

    When wsproto cannot accept a client's frame (invalid UTF-8 in a text message: 1007; another
    protocol error: 1002), it yields a `CloseConnection` with that code while the connection is
    still open. Hypercorn 0.18 sends a Close only in answer to the client's own Close, so it then
    dropped the TCP connection without one and the client saw 1006. Here that Close is framed
    straight into the connection's buffer before Hypercorn sees the event; Hypercorn then closes
    the connection, after the buffer is written."""

    def __init__(self, connection: Connection, stream: CoalescingStream) -> None:
        self.connection = connection
        self.stream = stream

    @property
    def state(self) -> WebSocketState:
        return self.connection.state

    def receive_data(self, data: bytes | None) -> None:
        self.connection.receive_data(data)

    def events(self) -> Iterator[Event]:
        for event in self.connection.events():
            if isinstance(event, CloseConnection) and self.connection.state is WebSocketState.OPEN:
                self.stream.write(self.connection.send(event))  # wsproto failed the connection
            yield event

    def send(self, event: Event) -> bytes:
        return self.connection.send(event)


class _TextFrameShortcut:
    """The app as one connection runs it: over HTTP/1.1, a WebSocket app's `send` frames text
    messages straight into the connection's buffer while the socket is open."""

    def __init__(self, app: AppWrapper, stream: CoalescingStream) -> None:
        self.app = app
        self.stream = stream

    async def __call__(
        self,
        scope: Scope,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
        sync_spawn: Callable[..., Any],
        call_soon: Callable[..., Any],
    ) -> None:
        # Hypercorn hands the app the bound `app_send` of its WebSocket stream, and only that
        # stream knows whether the socket is still open (wsproto's state) and can be written to.
        websocket = getattr(send, "__self__", None)
        if (
            scope["type"] == "websocket"
            and scope["http_version"] == "1.1"  # over HTTP/2 a frame is not the bytes on the wire
            and isinstance(websocket, WSStream)
        ):
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), SEND_TEXTS: {}}}
            send = partial(self._send, websocket, send)
        await self.app(scope, receive, send, sync_spawn, call_soon)

    async def _send(
        self, websocket: WSStream, hypercorn_send: ASGISendCallable, message: ASGISendEvent
    ) -> None:
        kind = message["type"]
        if kind == SEND_TEXTS:
            texts: Sequence[str] = cast(dict[str, Any], message)["texts"]  # runcast's own event
            if _is_open(websocket):
                await self.stream.send_all(b"".join([text_frame(text) for text in texts]))
            else:
                for text in texts:
                    await hypercorn_send({"type": "websocket.send", "bytes": None, "text": text})
        elif (
            kind == "websocket.send"
            and message.get("bytes") is None
            and isinstance(one_text := message.get("text"), str)
            and _is_open(websocket)
        ):
            await self.stream.send_all(text_frame(one_text))
        else:
            await hypercorn_send(message)
            if kind == "websocket.accept" and websocket.state is ASGIWebsocketState.CONNECTED:
                # The stream's wsproto connection, made by the accept: Hypercorn offers no other
                # place to handle a frame wsproto refuses. It calls the four members the wrapper
                # has, so the wrapper stands in for the `Connection` it is annotated with.
                websocket.connection = _FailingConnection(  # type: ignore[assignment]  # a stand-in
                    websocket.connection, self.stream
                )


def _is_open(websocket: WSStream) -> bool:
    """Whether Hypercorn would send a text message on `websocket` now (its own `app_send` and
    wsproto's `send` check the same three things)."""
    return (
        not websocket.closed
        and websocket.state is ASGIWebsocketState.CONNECTED
        and websocket.connection.state is WebSocketState.OPEN
    )


async def _serve_connection(
    app: AppWrapper,
    config: Config,
    context: WorkerContext,
    state: ConnectionState,
    socket_stream: trio.SocketStream,
) -> None:
    """One connection: Hypercorn's `TCPServer` on a `CoalescingStream`, whose flush runs beside
    it."""
    async with trio.open_nursery() as flushes:
        stream = CoalescingStream(socket_stream, flushes)
        # Hypercorn annotates the stream as an SSLStream, and runs any stream without a TLS
        # handshake (`do_handshake`) as plain TCP, as it runs a trio SocketStream.
        server = TCPServer(
            _TextFrameShortcut(app, stream),
            config,
            context,
            state,
            stream,  # type: ignore[arg-type]  # any trio stream, see above
        )
        try:
            await server.run()
        finally:
            # The server's protocol holds the server's `protocol_send`: a reference cycle, which
            # left to the garbage collector cost `hold` young collections of 50 - 115 ms over
            # 10,000 short connections. Dropped, the connection is freed when it ends. (`run`
            # sets `protocol` only once the socket's addresses are read.)
            vars(server).pop("protocol", None)


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


class HttpServer(Protocol):
    """The signature of `serve`, the server `web.server.serve` runs the app on by default."""

    def __call__(
        self,
        app: Framework,
        config: Config,
        *,
        shutdown_trigger: Callable[[], Awaitable[None]],
        sockets: list[socket.socket],
        task_status: trio.TaskStatus[list[str]],
    ) -> Awaitable[None]: ...


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
                _serve_connection, wrapped, config, context, ConnectionState(lifespan_state.copy())
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
