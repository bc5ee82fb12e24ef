"""A TCP relay on a loopback port in front of a server's port that drops connections at random
points: for each connection it draws (from a seeded generator) whether, and after how many
bytes from the server, it closes both sides, mid-frame included. A connection made while the
server is down is closed at once."""

from __future__ import annotations

import random

import attrs
import trio

CHUNK = 65536


@attrs.define
class Relay:
    upstream_port: int
    rng: random.Random
    cut_share: float = 0.5  # of the connections that are cut
    cut_within: tuple[int, int] = (100, 20_000)  # bytes from the server before a cut
    port: int = 0
    connections: int = 0
    cuts: int = 0
    refused: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._relay, listeners)

    async def _relay(self, downstream: trio.SocketStream) -> None:
        self.connections += 1
        budget = None
        if self.rng.random() < self.cut_share:
            budget = self.rng.randint(*self.cut_within)
        async with downstream:
            try:
                upstream = await trio.open_tcp_stream("127.0.0.1", self.upstream_port)
            except OSError:
                self.refused += 1
                return
            async with upstream, trio.open_nursery() as nursery:
                nursery.start_soon(self._pipe, downstream, upstream, None, nursery.cancel_scope)
                nursery.start_soon(self._pipe, upstream, downstream, budget, nursery.cancel_scope)

    async def _pipe(
        self,
        source: trio.SocketStream,
        sink: trio.SocketStream,
        budget: int | None,
        connection: trio.CancelScope,
    ) -> None:
        """Copy until either side closes or `budget` bytes are through; then end the
        connection."""
        try:
            while budget is None or budget > 0:
                data = await source.receive_some(CHUNK if budget is None else min(CHUNK, budget))
                if not data:
                    break
                await sink.send_all(data)
                if budget is not None:
                    budget -= len(data)
            if budget == 0:
                self.cuts += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        connection.cancel()
