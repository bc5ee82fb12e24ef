"""Following a run: every event from a start index, exactly once, in order, to the end.

A `Follow` keeps a cursor, the index of the next event its consumer is owed, and trusts nothing
else: a frame below the cursor is a duplicate and is skipped, a frame above it means something
was missed and the follower subscribes again from the cursor. That happens when the run dropped
this follower's feed because it was full (a slow consumer), when the run actor crashed and came
back, or when the run finished in between (then the history comes from the store). The same
cursor discipline is what lets any node serve a reconnect once histories live in Redis.

A run that can go no further without reaching its terminal event (its store cannot record its
end, or it is held by no run actor while its history has no end) raises `RunLost` once its
follower has every event there is.

Frames go to the consumer in batches (`stream_batches`): a backlog in pages of up to
`PAGE`, live events as many as the feed holds when the consumer is ready, so that a
WebSocket can frame a whole catch-up in one write. `stream` hands them over one at a time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import attrs

from actors.run import Snapshot
from actors.runlog import RunLost

PAGE = 1000  # most frames read from the store, or handed to the consumer, at once

SendFrame = Callable[[str], Awaitable[None]]
SendFrames = Callable[[Sequence[str]], Awaitable[None]]
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
        """`stream_batches`, one frame at a time."""

        async def send_each(frames: Sequence[str]) -> None:
            for frame in frames:
                await send(frame)

        await self.stream_batches(send_each)

    async def stream_batches(self, send: SendFrames) -> None:
        """Hand every event from `start` to `send`, in order and in non-empty batches, then
        return after the terminal one (or after the last stored one of a finished run). Raises
        RunLost."""
        cursor = self.start
        snapshot = self.snapshot
        try:
            while True:
                cursor = await self._backlog(snapshot, cursor, send)
                if snapshot.feed is None:
                    if not snapshot.status.finished:
                        raise RunLost(
                            self.run_id, "no run actor holds it and its history has no end"
                        )
                    return
                cursor, ended = await self._live(snapshot, cursor, send)
                if ended:
                    return
                snapshot = await self.resubscribe(cursor)
        finally:
            if snapshot.feed is not None:
                snapshot.feed.close()  # also when the consumer stops during the backlog

    async def _backlog(self, snapshot: Snapshot, cursor: int, send: SendFrames) -> int:
        if snapshot.frames is None:
            while cursor < snapshot.event_count:
                page = await self.read_events(snapshot.run_id, cursor, PAGE)
                page = page[: snapshot.event_count - cursor]
                if not page:
                    break
                await send(page)
                cursor += len(page)
            return cursor
        offset = max(cursor - snapshot.first, 0)
        while offset < len(snapshot.frames):
            batch = snapshot.frames[offset : offset + PAGE]
            await send(batch)
            offset += len(batch)
            cursor += len(batch)
        return cursor

    async def _live(self, snapshot: Snapshot, cursor: int, send: SendFrames) -> tuple[int, bool]:
        """Deliver from the feed until it ends with the terminal event (ended), or until it stops
        early or skips ahead (subscribe again from the cursor). Each batch is what the feed holds
        once the consumer is ready for more."""
        feed = snapshot.feed
        assert feed is not None
        try:
            while True:
                first, frames = await feed.take(PAGE)
                if not frames:
                    if isinstance(feed.failure, RunLost):
                        raise feed.failure
                    return cursor, feed.ended
                if first > cursor:
                    return cursor, False
                if first < cursor:
                    frames = frames[cursor - first :]
                if frames:
                    await send(frames)
                    cursor += len(frames)
        finally:
            feed.close()
