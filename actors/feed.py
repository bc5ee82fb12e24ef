"""A feed: the live events of one subscription, which its run pushes in without ever waiting.

A run publishes the events of a commit together, so a feed takes them as a batch of frames with
the index of the first (`push`), and its follower takes all that is waiting the same way
(`take`): one wake-up and one list operation a batch, where a channel costs a send and a
receive per event, and no object per event. A feed holds at most `capacity` events. A push
that does not fit adds what fits, marks the feed `lagged` and closes it: the run drops it, and
its follower reads what it missed from the history and subscribes again (see `actors.follow`).
The push carrying the run's terminal event marks the feed `ended` and closes it. A run that
is lost (its store cannot take its end) closes its feeds with the reason, `failure`, which
their followers raise once they have what the feed holds. The follower closes its feed when it
stops; a closed feed still hands over what it holds.
"""

from __future__ import annotations

import trio


class Feed:
    __slots__ = (
        "_arrived", "_first", "_frames", "capacity", "closed", "ended", "failure", "lagged"
    )

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a feed's capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self.lagged = False
        self.ended = False
        self.closed = False
        self.failure: Exception | None = None
        self._first = 0  # the index of the event of `_frames[0]`
        self._frames: list[str] = []
        self._arrived = trio.Event()

    def push(self, first: int, frames: list[str], *, last: bool = False) -> bool:
        """Add the frames of the run's next events, of indices `first`, `first + 1`, ...; `last`
        if the run's terminal event is the last of them. Returns whether the feed takes more:
        False once it is closed, and the run then drops it."""
        if self.closed:
            return False
        if not self._frames:
            self._first = first
        room = self.capacity - len(self._frames)
        if len(frames) > room:
            self._frames += frames[:room]
            self.lagged = True
            self.close()
            return False
        self._frames += frames
        if last:
            self.ended = True
            self.close()
            return False
        self._arrived.set()
        return True

    def close(self, failure: Exception | None = None) -> None:
        self.closed = True
        if failure is not None:
            self.failure = failure
        self._arrived.set()

    async def take(self, most: int) -> tuple[int, list[str]]:
        """Wait until events are waiting, then take up to `most` of them, oldest first: the
        index of the first and their frames; no frames once the feed is closed and empty. A
        checkpoint either way."""
        if self._frames:
            await trio.lowlevel.checkpoint()
        while not self._frames:
            if self.closed:
                await trio.lowlevel.checkpoint()
                return self._first, []
            self._arrived = trio.Event()
            await self._arrived.wait()
        first = self._first
        if len(self._frames) <= most:
            frames, self._frames = self._frames, []
            return first, frames
        frames = self._frames[:most]
        del self._frames[:most]
        self._first = first + most
        return first, frames
