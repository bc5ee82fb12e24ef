"""`GET /runs/{run_id}/events`: one run as Server-Sent Events (`text/event-stream`).

The stream's text is `web.sse_framing`'s; this module is the I/O around it. The route reads
where the stream starts (`Last-Event-ID`, else `?from=`), subscribes with `runtime.follow` (so a
run another node of a shared store owns is followed through the store, as on the WebSocket), and
answers before it streams anything: 404 for an unknown run, 422 for a bad `from` or
`Last-Event-ID` or one beyond the run's events (the WebSocket's error, prefixed with what said
it), 204 for a finished run followed from past its last event (what an EventSource asks when it
reconnects after the end: 204 tells it to stop reconnecting). Otherwise 200, and the body streams
the run's events to the terminal one, then `end`, and the response ends.

The body (`RunStream`) owns a nursery for as long as Quart sends it: a producer task follows the
run and hands each batch of events, framed, over a channel without buffer; the sending side
takes them, and sends a keep-alive comment whenever `keep_alive` seconds pass with nothing to
send. A client that leaves ends the response: Quart cancels the sending, and the body's exit
cancels the producer. When the server shuts down, the stream gets `PUMP_FLUSH_TIMEOUT` to
deliver its run's last events (the runtime has ended the runs it holds by then), as a WebSocket
does, then ends.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from types import TracebackType

import trio
from quart import Blueprint, Response, request
from quart.wrappers.response import ResponseBody

from actors import IndexBeyondRun, RunLost, Runtime, UnknownRun
from actors.follow import Follow
from actors.store import HistoryGone, StorageFailed
from web.errors import problem
from web.runs_api import BadQuery, single
from web.shutdown import PUMP_FLUSH_TIMEOUT
from web.sse_framing import (
    KEEP_ALIVE,
    BadResume,
    EventStreamFraming,
    resume_point,
    run_error,
)

log = logging.getLogger(__name__)

KEEP_ALIVE_INTERVAL = 15.0  # seconds without anything sent before a keep-alive comment
HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # a proxy that buffers answers (nginx) passes this one through
}


class RunStream(ResponseBody):
    """The body of one run's stream, as Quart sends a body: `async with body: async for chunk
    in body`."""

    def __init__(
        self,
        follow: Follow,
        framing: EventStreamFraming,
        *,
        keep_alive: float,
        server_closing: trio.Event,
    ) -> None:
        self.follow = follow
        self.framing = framing
        self.keep_alive = keep_alive
        self.server_closing = server_closing
        self._chunks_in, self._chunks = trio.open_memory_channel[bytes](0)
        self._nursery = AsyncExitStack()

    async def __aenter__(self) -> RunStream:
        producer = await self._nursery.enter_async_context(trio.open_nursery())
        self._nursery.callback(producer.cancel_scope.cancel)  # on exit, before the nursery waits
        producer.start_soon(self._produce)
        return self

    async def __aexit__(
        self, exc_type: type, exc_value: BaseException, tb: TracebackType
    ) -> None:
        await self._nursery.__aexit__(exc_type, exc_value, tb)

    def __aiter__(self) -> RunStream:
        return self

    async def __anext__(self) -> bytes:
        with trio.move_on_after(self.keep_alive):
            try:
                return await self._chunks.receive()
            except trio.EndOfChannel:
                raise StopAsyncIteration from None
        return KEEP_ALIVE.encode()

    async def _produce(self) -> None:
        """Follow the run to its end, or until the shutdown's flush time is over; then close
        the channel, which ends the response."""
        async with self._chunks_in, trio.open_nursery() as nursery:
            nursery.start_soon(self._cut_at_shutdown, nursery.cancel_scope)
            await self._chunks_in.send(self.framing.opening().encode())
            await self._stream()
            nursery.cancel_scope.cancel()

    async def _cut_at_shutdown(self, stream: trio.CancelScope) -> None:
        await self.server_closing.wait()
        await trio.sleep(PUMP_FLUSH_TIMEOUT)
        stream.cancel()

    async def _send_events(self, frames: Sequence[str]) -> None:
        await self._chunks_in.send(self.framing.events(frames).encode())

    async def _stream(self) -> None:
        run_id = self.follow.run_id
        try:
            await self.follow.stream_batches(self._send_events)
        except (HistoryGone, RunLost) as ended:
            await self._chunks_in.send(run_error(run_id, str(ended)).encode())
        except StorageFailed as failure:
            interrupted = (
                f"the live stream of run {run_id} is interrupted: {failure}; reconnect later"
                " with the last event index seen"
            )
            await self._chunks_in.send(run_error(run_id, interrupted).encode())
        except Exception as failure:
            log.exception("stream of run %s failed", run_id)
            message = f"following run {run_id} failed: {failure}"
            await self._chunks_in.send(run_error(run_id, message).encode())
        else:
            await self._chunks_in.send(self.framing.ending().encode())


def sse_blueprint(
    runtime: Runtime, server_closing: trio.Event, *, keep_alive: float = KEEP_ALIVE_INTERVAL
) -> Blueprint:
    """The route; `keep_alive`: seconds without anything sent before a keep-alive comment."""
    api = Blueprint("sse", __name__)

    @api.get("/runs/<run_id>/events")
    async def run_events(run_id: str) -> Response | tuple[Response, int]:
        try:
            point = resume_point(single(request.args, "from"), request.headers.get("Last-Event-ID"))
        except (BadQuery, BadResume) as bad:
            return problem(422, str(bad))
        try:
            follow = await runtime.follow(run_id, point.start, replay_in_full=False)
        except UnknownRun as unknown:
            return problem(404, str(unknown))
        except IndexBeyondRun as beyond:
            return problem(422, f"{point.source}: {beyond}")
        snapshot = follow.snapshot
        nothing_owed = follow.finished and point.start == snapshot.event_count
        if nothing_owed:
            return Response(b"", status=204)
        if request.method == "HEAD":
            if snapshot.feed is not None:
                snapshot.feed.close()  # nothing is streamed: the run drops the feed
            return Response(b"", headers=HEADERS)
        framing = EventStreamFraming(run_id, snapshot.status, snapshot.event_count, point.start)
        body = RunStream(follow, framing, keep_alive=keep_alive, server_closing=server_closing)
        response = Response(body, headers=HEADERS)
        response.timeout = None  # Quart's default RESPONSE_TIMEOUT would cut it after 60 s
        return response

    return api
