"""Group commit: many concurrent `commit` calls become one transaction per round trip.

One writer task takes everything queued since its last round, applies it in one go (for SQLite,
one transaction in a worker thread) and wakes every caller of that round. If a round fails, each
caller's writes are retried alone so that one bad write fails only its own caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import trio

from actors.actor import Reply
from actors.store.base import StorageFailed, StoreError, Write

ApplyBatch = Callable[[list[Sequence[Write]]], Awaitable[None]]


class GroupCommitter:
    def __init__(self, apply: ApplyBatch, *, max_batch: int = 10_000) -> None:
        self._apply = apply
        self._max_batch = max_batch
        self._pending: list[tuple[Sequence[Write], Reply[None]]] = []
        self._wakeup = trio.Event()
        self._closing = False
        self._running = False
        self.rounds = 0
        self.writes = 0

    async def commit(self, writes: Sequence[Write]) -> None:
        if self._closing or not self._running:
            raise StorageFailed("the store is closed")
        reply: Reply[None] = Reply()
        self._pending.append((writes, reply))
        self._wakeup.set()
        await reply.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer task. Returns once `close` was called and everything queued is durable."""
        self._running = True
        task_status.started()
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup = trio.Event()
                while self._pending:
                    batch = self._pending[: self._max_batch]
                    del self._pending[: self._max_batch]
                    with trio.CancelScope(shield=True):
                        await self._commit_round(batch)
                if self._closing:
                    return
        finally:
            self._running = False
            for _, reply in self._pending:  # only when cancelled: nobody will write these
                reply.fail(StorageFailed("the store's writer stopped"))
            self._pending.clear()

    def close(self) -> None:
        """Refuse new commits; the writer finishes what is queued and returns."""
        self._closing = True
        self._wakeup.set()

    async def _commit_round(self, batch: list[tuple[Sequence[Write], Reply[None]]]) -> None:
        self.rounds += 1
        try:
            await self._apply([writes for writes, _ in batch])
        except Exception:
            for writes, reply in batch:
                try:
                    await self._apply([writes])
                except StoreError as error:
                    reply.fail(error)
                except Exception as error:
                    reply.fail(StorageFailed(f"commit failed: {type(error).__name__}: {error}"))
                else:
                    self.writes += len(writes)
                    reply.set(None)
            return
        for writes, reply in batch:
            self.writes += len(writes)
            reply.set(None)
