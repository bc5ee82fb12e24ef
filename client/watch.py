"""`Watch`: a run's events as an async iterator that resumes by itself, the I/O shell around
`client.cursor.WatchCursor` (which frames to deliver) and `client.backoff.Retrying` (when to
try again).

The connection lives in a task of the `RuncastClient`'s task group, never inside the caller's
iteration, and hands each event over a memory stream without buffer: the task reads the socket
only as fast as the caller takes events. A refusal (`RunNotFound`, `HistoryGone`, ...) or the
end of the retries (`ConnectionLost`) comes out of the iteration as that exception. Leaving the
iteration early: `aclose()`, or `async with client.watch(...) as events:`; the client's own end
stops whatever watch is left.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from client.backoff import Retrying
from client.cursor import OPENINGS, Deliver, Fail, Reconnect, WatchCursor
from client.errors import ConnectionLost, RuncastError
from client.events import RunEvent
from client.session import Session

Connect = Callable[[], AbstractAsyncContextManager[Session]]


class Watch:
    """An async iterator of one run's events (`RunEvent`), each exactly once, in order, from
    the cursor's first index to the end of the run."""

    def __init__(
        self, cursor: WatchCursor, connect: Connect, retrying: Retrying, tasks: TaskGroup
    ) -> None:
        self._cursor = cursor
        self._connect = connect
        self._retrying = retrying
        self._tasks = tasks
        self._scope = anyio.CancelScope()
        send, receive = anyio.create_memory_object_stream[RunEvent | RuncastError]()
        self._send: MemoryObjectSendStream[RunEvent | RuncastError] = send
        self._receive: MemoryObjectReceiveStream[RunEvent | RuncastError] = receive
        self._started = False

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> RunEvent:
        if not self._started:
            self._started = True
            self._tasks.start_soon(self._pump)
        try:
            item = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        if isinstance(item, RuncastError):
            raise item
        return item

    async def aclose(self) -> None:
        """Stop watching: the connection closes, the iteration ends."""
        self._scope.cancel()
        await self._receive.aclose()
        if not self._started:
            await self._send.aclose()

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _pump(self) -> None:
        with self._scope, self._send:
            try:
                await self._follow()
            except anyio.BrokenResourceError:
                return  # the caller stopped iterating
            except RuncastError as error:
                failure = error
            else:
                return
            try:
                await self._send.send(failure)
            except anyio.BrokenResourceError:
                return

    async def _follow(self) -> None:
        reason: RuncastError | str = "no connection yet"
        while not self._cursor.finished:
            try:
                async with self._connect() as session:
                    await session.send(self._cursor.reconnect())
                    reason = await self._read(session)
            except ConnectionLost as lost:
                reason = lost
            if self._cursor.finished:
                return
            wait = self._retrying.failed(anyio.current_time())
            if wait is None:
                raise ConnectionLost(
                    f"gave up following run {self._cursor.run_id} after"
                    f" {self._retrying.backoff.give_up_after} s without the server: {reason}"
                )
            await anyio.sleep(wait)

    async def _read(self, session: Session) -> str:
        """Hand over the connection's events until the watch is finished (returns "") or the
        connection should be dropped (returns why); raises what ends the watch."""
        while True:
            frame, raw = await session.receive()
            step = self._cursor.receive(frame, raw)
            if isinstance(step, Deliver):
                self._retrying.answered()
                await self._send.send(step.event)
            elif isinstance(step, Reconnect):
                return step.reason
            elif isinstance(step, Fail):
                raise step.error
            elif frame.get("event") in OPENINGS:
                self._retrying.answered()
            if self._cursor.finished:
                return ""
