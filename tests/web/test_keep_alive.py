"""web/keep_alive.py on a real server, with a raw socket client that controls what it sends and
when: after an answer given before the request's body arrived, the connection says
`Connection: close` and closes; after a request read in full, it answers the next one; an idle
connection is closed after the keep-alive timeout."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
import trio

import web.server
from actors.workflows.examples.code_review import code_review_graph
from tests.conftest import StartServer

ANSWER_WITHIN = 5.0  # seconds: a bound so that a hang fails; every answer here takes milliseconds
TOKEN = "t"
GRAPH = json.dumps(code_review_graph()).encode()


@attrs.frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers["content-type"] == "application/json", self.headers
        return json.loads(self.body)

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


class RawClient:
    """One HTTP/1.1 connection, written and read byte by byte."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        assert data, f"the server closed the connection; unread: {bytes(self.buffer)!r}"
        self.buffer += data

    async def answer(self) -> Answer:
        with trio.fail_after(ANSWER_WITHIN):
            while b"\r\n\r\n" not in self.buffer:
                await self._fill()
            head, _, _ = bytes(self.buffer).partition(b"\r\n\r\n")
            del self.buffer[: len(head) + 4]
            status_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            while len(self.buffer) < length:
                await self._fill()
            body = bytes(self.buffer[:length])
            del self.buffer[:length]
        return Answer(int(status_line.split()[1]), headers, body)

    async def closed_by_server(self) -> None:
        """Return when the server has closed the connection (EOF); fail if it does not."""
        with trio.fail_after(ANSWER_WITHIN):
            while data := await self.stream.receive_some(65536):
                self.buffer += data
        assert not self.buffer, f"bytes after the answer: {bytes(self.buffer)!r}"


async def connect(port: int) -> RawClient:
    return RawClient(await trio.open_tcp_stream("127.0.0.1", port))


def post_head(path: str, length: int, *extra: str) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def usable_or_closed(client: RawClient, first: Answer, rest_of_body: bytes) -> None:
    """After `first`, either the connection says it closes and does, or it answers the next
    request (sent after the rest of the first request's body)."""
    if first.closes:
        await client.closed_by_server()
    else:
        await client.send(rest_of_body + HEALTH)
        assert (await client.answer()).status == 200


async def test_a_401_before_the_body_arrived_closes_the_connection(start_server: StartServer) -> None:
    """The 401 is decided on the headers alone; whether the body came with them (the usual case)
    or only after the answer, the connection never waits for a request it will not answer."""
    server = await start_server(token=TOKEN)
    read_in_full = await connect(server.port)
    async with read_in_full.stream:
        auth = f"Authorization: Bearer {TOKEN}"
        await read_in_full.send(post_head("/graph/create", len(GRAPH), auth) + GRAPH)
        created = await read_in_full.answer()
        assert created.status == 200 and not created.closes
        await read_in_full.send(HEALTH)
        assert (await read_in_full.answer()).status == 200
    for attempt in range(10):
        client = await connect(server.port)
        async with client.stream:
            head = post_head("/graph/create", len(GRAPH))
            body_first = attempt % 2 == 1
            await client.send(head + GRAPH if body_first else head)
            refused = await client.answer()
            assert refused.status == 401
            assert "Bearer" in refused.json()["detail"]
            await usable_or_closed(client, refused, b"" if body_first else GRAPH)
            if not body_first:
                assert refused.closes


async def test_a_413_answered_on_the_headers_closes_the_connection(start_server: StartServer) -> None:
    server = await start_server()
    size = 20 * 1024 * 1024  # over Quart's MAX_CONTENT_LENGTH of 16 MiB
    client = await connect(server.port)
    async with client.stream:
        await client.send(post_head("/graph/create", size))
        too_large = await client.answer()
        assert too_large.status == 413
        assert too_large.json() == {
            "detail": "The request body is larger than the limit of 16777216 bytes"
        }
        assert too_large.closes
        await client.closed_by_server()


async def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web.server, "KEEP_ALIVE_TIMEOUT", 0.5)
    server = await start_server()
    client = await connect(server.port)
    async with client.stream:
        await client.send(HEALTH)
        answer = await client.answer()
        assert answer.status == 200 and not answer.closes
        await client.closed_by_server()
