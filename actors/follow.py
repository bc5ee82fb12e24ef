"""Following a run: every event from a start index, exactly once, in order, to the end.

A `Follow` keeps a cursor, the index of the next event its consumer is owed, and trusts nothing
else: a frame below the cursor is a duplicate and is skipped, a frame above it means something
was missed and the follower subscribes again from the cursor. That happens when the run dropped
this follower's feed because it was full (a slow consumer), when the run actor crashed and came
back, or when the run finished in between (then the history comes from the store). The same
cursor discipline is what lets any node serve a reconnect once histories live in Redis.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import trio

from actors.events import TERMINAL_EVENTS
from actors.run import Snapshot

STORE_PAGE = 1000

SendFrame = Callable[[str], Awaitable[None]]
Resubscribe = Callable[[int], Awaitable[Snapshot]]
ReadEvents = Callable[[str, int, int], Awaitable[list[str]]]


@attrs.define
class Follow:
    """`snapshot` is the first subscription; `resubscribe(start)` makes another; `read_events`
    pages through the store for a history not held in memory."""

    snapshot: Snapshot
    start: int
    resubscribe: Resubscribe
    read_events: ReadEvents

    @property
    def run_id(self) -> str:
        return self.snapshot.run_id

    @property
    def finished(self) -> bool:
        return self.snapshot.status.finished

    @property
    def missed(self) -> int:
        """Events in the run, at subscription, that come before the live ones."""
        return max(self.snapshot.event_count - self.start, 0)

    async def stream(self, send: SendFrame) -> None:
        """Hand every event from `start` to `send`, then return after the terminal one (or after
        the last stored one of a finished run)."""
        cursor = self.start
        snapshot = self.snapshot
        while True:
            cursor = await self._backlog(snapshot, cursor, send)
            if snapshot.feed is None:
                return
            cursor, ended = await self._live(snapshot, cursor, send)
            if ended:
                return
            snapshot = await self.resubscribe(cursor)

    async def _backlog(self, snapshot: Snapshot, cursor: int, send: SendFrame) -> int:
        if snapshot.frames is None:
            while cursor < snapshot.event_count:
                page = await self.read_events(snapshot.run_id, cursor, STORE_PAGE)
                if not page:
                    break
                for frame in page[: snapshot.event_count - cursor]:
                    await send(frame)
                    cursor += 1
            return cursor
        for offset in range(max(cursor - snapshot.first, 0), len(snapshot.frames)):
            await send(snapshot.frames[offset])
            cursor += 1
        return cursor

    async def _live(self, snapshot: Snapshot, cursor: int, send: SendFrame) -> tuple[int, bool]:
        """Deliver from the feed until the terminal event (ended) or until the feed stops or
        skips ahead (subscribe again from the cursor)."""
        assert snapshot.feed is not None
        receive = snapshot.feed.receive
        with receive:
            while True:
                try:
                    event = receive.receive_nowait()  # drain what is there without yielding
                except trio.WouldBlock:
                    try:
                        event = await receive.receive()
                    except trio.EndOfChannel:
                        return cursor, False
                except trio.EndOfChannel:
                    return cursor, False
                if event.index < cursor:
                    continue
                if event.index > cursor:
                    return cursor, False
                await send(event.frame)
                cursor += 1
                if event.kind in TERMINAL_EVENTS:
                    return cursor, True
