"""The publisher: one task per runtime that makes the runs' queued events durable, then has each
run publish them.

A run queues its events in its run log (`actors.runlog`) and calls `ready(log)`. The publisher's task works in rounds: it
takes the queued writes of every ready run, commits all of them in one store commit (shielded, so
a cancelled runtime never leaves an event durable but unpublished), and then tells each run of
the round that its writes are durable, upon which the run publishes them in order. Rounds follow
one another, so each run's events are committed and published in index order; what a run queues
during a round goes into the next one. A round costs one task wake-up and one commit however many
runs it carries, and an idle run holds no task for writing.

If a round's commit fails and it carried several runs, each run's writes are committed alone, so
that a bad write fails only its own run (`PublishingRun.failed`): that run's actor then crashes
and its supervisor recovers it from the store.

`storage_failure` is the store's error from the last commit that failed because the store could
not write (`StorageFailed`), until a commit lands again: the runtime's health.
"""

from __future__ import annotations

import time
from typing import Protocol

import trio

from actors.stats import RuntimeStats
from actors.store.base import StorageFailed, Store, StoreError, Write


class PublishingRun(Protocol):
    """What the publisher needs of a run: its run log (`actors.runlog.RunLog`)."""

    def take(self) -> list[Write]:
        """Hand over what is queued; it is in flight until `committed` or `failed`."""

    def committed(self) -> None:
        """The writes last taken are durable: publish their events."""

    def failed(self, failure: StoreError) -> None:
        """The writes last taken could not be made durable."""


class Publisher:
    def __init__(self, store: Store, stats: RuntimeStats) -> None:
        self.store = store
        self.stats = stats
        self.running = False
        self.storage_failure: StorageFailed | None = None
        self._ready: dict[PublishingRun, None] = {}  # an ordered set
        self._wakeup = trio.Event()
        self._round_ended = trio.Event()

    def ready(self, run: PublishingRun) -> None:
        """`run` has queued writes: take them in the next round."""
        self._ready[run] = None
        self._wakeup.set()

    async def round_ended(self) -> None:
        """Wait for the end of the round under way (or of the next one), or for the publisher to
        stop."""
        await self._round_ended.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.running = True
        task_status.started()
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup = trio.Event()
                while self._ready:
                    runs = list(self._ready)
                    self._ready.clear()
                    with trio.CancelScope(shield=True):
                        await self._round(runs)
                    self._end_round()
        finally:
            self.running = False  # waiting runs then publish what they queued themselves
            self._end_round()

    def _end_round(self) -> None:
        self._round_ended.set()
        self._round_ended = trio.Event()

    async def _round(self, runs: list[PublishingRun]) -> None:
        batches = [(run, writes) for run in runs if (writes := run.take())]
        if len(batches) == 1:
            await self.commit_alone(*batches[0])
        elif batches:
            try:
                await self.commit([write for _, writes in batches for write in writes])
            except StoreError:
                for run, writes in batches:
                    await self.commit_alone(run, writes)
            else:
                for run, _ in batches:
                    run.committed()

    async def commit_alone(self, run: PublishingRun, writes: list[Write]) -> None:
        """Commit the writes `run` handed over, on their own, and tell the run how that went.
        Also what a run does itself when no publisher task runs."""
        try:
            await self.commit(writes)
        except StoreError as failure:
            run.failed(failure)
        else:
            run.committed()

    async def commit(self, writes: list[Write]) -> None:
        """Commit `writes` and return once they are durable; raises the store's error. Every
        commit of the runtime's runs comes here, so `storage_failure` follows the store."""
        committing = time.perf_counter()
        try:
            await self.store.commit(writes)
        except StorageFailed as failure:
            self.storage_failure = failure
            raise
        self.storage_failure = None
        self.stats.commit_seconds.observe(time.perf_counter() - committing)
