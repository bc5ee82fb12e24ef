"""A feed: the live events of one subscription, which its run pushes in without ever waiting.

A run publishes the events of a commit together, so a feed takes them as a batch (`push`) and
its follower takes all that is waiting as a batch (`take`): one wake-up and one list operation a
batch, where a channel costs a send and a receive per event. A feed holds at most `capacity`
events. A push that does not fit adds what fits, marks the feed `lagged` and closes it: the run
drops it, and its follower reads what it missed from the history and subscribes again (see
`actors.follow`). Either side may close the feed; a closed feed still hands over what it holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio

from actors.events import Event


class Feed:
    __slots__ = ("capacity", "lagged", "closed", "_events", "_arrived")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a feed's capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self.lagged = False
        self.closed = False
        self._events: list[Event] = []
        self._arrived = trio.Event()

    def push(self, events: Sequence[Event]) -> bool:
        """Add `events`; False if the feed is (now) closed and the run should drop it."""
        if self.closed:
            return False
        room = self.capacity - len(self._events)
        if len(events) > room:
            self._events += events[:room]
            self.lagged = True
            self.close()
            return False
        self._events += events
        self._arrived.set()
        return True

    def close(self) -> None:
        self.closed = True
        self._arrived.set()

    async def take(self, most: int) -> list[Event]:
        """Wait until events are waiting, then take up to `most` of them, oldest first; [] once
        the feed is closed and empty. A checkpoint either way."""
        if self._events:
            await trio.lowlevel.checkpoint()
        while not self._events:
            if self.closed:
                await trio.lowlevel.checkpoint()
                return []
            self._arrived = trio.Event()
            await self._arrived.wait()
        if len(self._events) <= most:
            events, self._events = self._events, []
            return events
        events = self._events[:most]
        del self._events[:most]
        return events
