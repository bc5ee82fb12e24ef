"""web/transport.py: Hypercorn's `TCPServer` on runcast's coalescing stream, served on a loopback
port with real clients, against small plain-ASGI apps.

- order: frames from several tasks on one socket arrive exactly once and in each task's order,
  for random sizes (some past the high-water mark) and a client that pauses at random;
- back-pressure: a sender to a client that does not read waits instead of buffering without
  bound;
- close: a socket closed right after a burst delivers the whole burst first;
- a client that vanishes mid-burst ends its own connection only;
- plain HTTP (keep-alive) works, and after shutdown the port refuses connections;
- a finished connection's server and stream are freed without the garbage collector;
- text messages take the shortcut (`text_frame`): frames byte for byte as wsproto's (a property
  over random text, around every change of the length field's form), of every length encoding,
  uncompressed also when the client negotiated permessage-deflate.
"""

from __future__ import annotations

import gc
import json
import random
import socket
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import attrs
import httpx
import pytest
import trio
from hypercorn.trio.tcp_server import TCPServer
from hypothesis import given, settings
from hypothesis import strategies as st
from trio_websocket import ConnectionClosed, open_websocket_url
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import AcceptConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from tests.conftest import Running, ServeAsgi
from web.asgi_websocket import SEND_TEXTS
from web.transport import HIGH_WATER, CoalescingStream, text_frame

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@attrs.define
class AppLog:
    """What the test apps saw: bytes handed to `send` so far, and whether a disconnect came."""

    sent_bytes: int = 0
    disconnected: trio.Event = attrs.field(factory=trio.Event)


def burst_app(log: AppLog) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """WebSocket: each request `{"senders": [[tag, frames, size], ...], "close": bool,
    "batch": n}` starts one task per sender, each sending `frames` frames
    `"<tag>:<i>:<padding to size>"` back to back (n at a time through the `send_texts`
    extension if n > 1); then `"done"`, or a Close (1000) if asked. HTTP: 200 with the path as
    the body."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "http":
            await receive()
            body = scope["path"].encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] != "websocket.disconnect":
            request = json.loads(message["text"])

            batch = request.get("batch", 1)

            async def sender(tag: str, frames: int, size: int) -> None:
                texts = []
                for index in range(frames):
                    head = f"{tag}:{index}:"
                    texts.append(head + "x" * max(0, size - len(head)))
                for first in range(0, frames, batch):
                    chunk = texts[first : first + batch]
                    if batch > 1:
                        await send({"type": SEND_TEXTS, "texts": chunk})
                    else:
                        await send({"type": "websocket.send", "text": chunk[0]})
                    log.sent_bytes += sum(len(text) for text in chunk)

            async with trio.open_nursery() as nursery:
                for tag, frames, size in request["senders"]:
                    nursery.start_soon(sender, tag, frames, size)
            if request.get("close"):
                await send({"type": "websocket.close", "code": 1000})
                break
            await send({"type": "websocket.send", "text": "done"})
        log.disconnected.set()

    return app


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/ws"


async def test_frames_from_several_senders_arrive_once_and_in_order(serve_asgi: ServeAsgi) -> None:
    """Single messages and batches of the `send_texts` extension alike."""
    server = await serve_asgi(burst_app(AppLog()))
    rng = random.Random(20261122)
    async with open_websocket_url(ws_url(server.base_url), max_message_size=HIGH_WATER * 4) as ws:
        for _ in range(12):
            senders = [
                [f"s{n}", rng.randint(1, 300), rng.choice([1, 50, 200, 3000, HIGH_WATER + 10])]
                for n in range(rng.randint(1, 5))
            ]
            batch = rng.choice([1, 2, 7, 100, 1000])
            await ws.send_message(json.dumps({"senders": senders, "batch": batch}))
            received: dict[str, list[int]] = {tag: [] for tag, _, _ in senders}
            with trio.fail_after(30):
                while (frame := await ws.get_message()) != "done":
                    tag, index, _ = str(frame).split(":", 2)
                    received[tag].append(int(index))
                    if rng.random() < 0.01:
                        await trio.sleep(rng.random() / 100)
            assert received == {tag: list(range(frames)) for tag, frames, _ in senders}


async def test_a_sender_to_a_client_that_does_not_read_waits(serve_asgi: ServeAsgi) -> None:
    log = AppLog()
    server = await serve_asgi(burst_app(log))
    total = 64 * 1024 * 1024
    async with await raw_websocket(server, [["big", total // 16384, 16384]]):
        await trio.sleep(1.0)  # the client reads nothing meanwhile
        # The kernel's socket buffers (a few MiB each way here) and HIGH_WATER are all the
        # sender may fill; without back-pressure it would have handed over all 64 MiB.
        assert 0 < log.sent_bytes < total // 4
    with trio.fail_after(10):
        await log.disconnected.wait()


async def raw_websocket(server: Running, senders: list[list[Any]]) -> trio.SocketStream:
    """A WebSocket opened by hand on a plain TCP stream, one burst requested, nothing read."""
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    await stream.send_all(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with trio.fail_after(10):
        response = await stream.receive_some(4096)
    assert response.startswith(b"HTTP/1.1 101 "), response
    await stream.send_all(masked_text_frame(json.dumps({"senders": senders}).encode()))
    return stream


def masked_text_frame(payload: bytes) -> bytes:
    """A client-to-server text frame (RFC 6455 requires the mask) for a payload < 64 KiB."""
    mask = b"\x01\x02\x03\x04"
    length = len(payload)
    header = bytes([0x81, 0x80 | length]) if length < 126 else bytes([0x81, 0x80 | 126]) + length.to_bytes(2, "big")
    return header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


async def test_a_close_after_a_burst_delivers_the_whole_burst_first(serve_asgi: ServeAsgi) -> None:
    server = await serve_asgi(burst_app(AppLog()))
    async with open_websocket_url(ws_url(server.base_url)) as ws:
        await ws.send_message(json.dumps({"senders": [["a", 2000, 100]], "close": True}))
        indices = []
        with pytest.raises(ConnectionClosed) as closed, trio.fail_after(30):
            while True:
                indices.append(int(str(await ws.get_message()).split(":")[1]))
    assert indices == list(range(2000))
    assert closed.value.reason.code == 1000


async def test_a_client_vanishing_mid_burst_ends_only_its_connection(serve_asgi: ServeAsgi) -> None:
    log = AppLog()
    server = await serve_asgi(burst_app(log))
    stream = await raw_websocket(server, [["a", 100_000, 200]])
    with trio.fail_after(10):
        await stream.receive_some(65536)
    # linger 0: closing sends a reset, as a client whose machine or network went away
    stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()
    with trio.fail_after(10):
        await log.disconnected.wait()
    async with open_websocket_url(ws_url(server.base_url)) as ws:
        await ws.send_message(json.dumps({"senders": [["b", 3, 10]]}))
        with trio.fail_after(10):
            assert [str(await ws.get_message()) for _ in range(4)][-1] == "done"


async def test_a_response_before_the_server_closes_the_connection_is_sent_whole(
    serve_asgi: ServeAsgi,
) -> None:
    server = await serve_asgi(burst_app(AppLog()))
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    await stream.send_all(b"GET /closing HTTP/1.0\r\n\r\n")  # HTTP/1.0: the server closes after
    response = b""
    with trio.fail_after(10):
        while chunk := await stream.receive_some(4096):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200 ") and response.endswith(b"\r\n\r\n/closing")


async def test_http_keep_alive_and_no_connections_after_shutdown(serve_asgi: ServeAsgi) -> None:
    server = await serve_asgi(burst_app(AppLog()))
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for path in ("/one", "/two", "/three"):
            response = await client.get(path)
            assert (response.status_code, response.text) == (200, path)
    await server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


async def test_a_finished_connection_is_freed_without_the_garbage_collector(
    serve_asgi: ServeAsgi,
) -> None:
    """With the collector off, a connection's objects go as soon as it ends: no reference cycle
    keeps them (10,000 short connections left to the collector cost `hold` 50 - 115 ms pauses)."""
    server = await serve_asgi(burst_app(AppLog()))

    def connections() -> int:
        return sum(isinstance(o, CoalescingStream | TCPServer) for o in gc.get_objects())

    gc.collect()
    gc.disable()
    try:
        before = connections()
        for _ in range(5):
            async with open_websocket_url(ws_url(server.base_url)) as ws:
                await ws.send_message(json.dumps({"senders": [["a", 3, 10]]}))
                while await ws.get_message() != "done":
                    pass
        with trio.fail_after(10):
            while connections() > before:  # the server ends each connection a moment later
                await trio.sleep(0.01)
    finally:
        gc.enable()


# Where a frame's length field changes form (RFC 6455 §5.2): 7 bits up to 125 bytes, 16 bits
# up to 65,535, 64 bits beyond.
LENGTH_BOUNDARIES = (125, 126, 65535, 65536)


@st.composite
def texts_near_a_length_boundary(draw: st.DrawFn) -> str:
    """Random text (any code point UTF-8 can carry), padded with a random 1 - 4 byte character
    and ASCII so that its UTF-8 is within 3 bytes of a `LENGTH_BOUNDARIES` length."""
    size = draw(st.sampled_from(LENGTH_BOUNDARIES)) + draw(st.integers(-3, 3))
    text = draw(st.text(max_size=40))
    pad = draw(st.sampled_from(["x", "é", "€", "😀"]))
    missing = max(0, size - len(text.encode()))
    return text + pad * (missing // len(pad.encode())) + "x" * (missing % len(pad.encode()))


@settings(deadline=None, max_examples=300)
@given(st.one_of(st.text(), texts_near_a_length_boundary()))
def test_text_frame_is_the_frame_wsproto_would_send(text: str) -> None:
    assert text_frame(text) == Connection(ConnectionType.SERVER).send(TextMessage(data=text))


async def test_text_messages_of_every_length_encoding_arrive_whole(serve_asgi: ServeAsgi) -> None:
    server = await serve_asgi(burst_app(AppLog()))
    async with open_websocket_url(ws_url(server.base_url), max_message_size=2**20) as ws:
        for size in (4, 125, 126, 127, 65535, 65536, 70_000):
            await ws.send_message(json.dumps({"senders": [["n", 1, size]]}))
            with trio.fail_after(10):
                frame = str(await ws.get_message())
                assert await ws.get_message() == "done"
            assert (len(frame), frame[:4]) == (size, "n:0:")


async def test_text_is_sent_uncompressed_when_the_client_negotiated_deflate(
    serve_asgi: ServeAsgi,
) -> None:
    server = await serve_asgi(burst_app(AppLog()))
    client = WSConnection(ConnectionType.CLIENT)
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    await stream.send_all(
        client.send(Request(host="127.0.0.1", target="/ws", extensions=[PerMessageDeflate()]))
    )
    events: list[Any] = []
    with trio.fail_after(10):
        while not events:
            client.receive_data(await stream.receive_some(65536))
            events = list(client.events())
    assert isinstance(events[0], AcceptConnection) and events[0].extensions, events
    await stream.send_all(client.send(TextMessage(data=json.dumps({"senders": [["z", 3, 500]]}))))
    wire = b""
    texts: list[str] = []
    with trio.fail_after(10):
        while "done" not in texts:
            data = await stream.receive_some(65536)
            wire += data
            client.receive_data(data)
            texts += [event.data for event in client.events() if isinstance(event, TextMessage)]
    await stream.aclose()
    assert texts == [f"z:{i}:".ljust(500, "x") for i in range(3)] + ["done"]
    # 0x81: FIN and opcode 1 without RSV1, i.e. not compressed (a compressed one starts 0xC1)
    assert wire.startswith(text_frame(texts[0])[:4])
    assert wire[0] == 0x81
