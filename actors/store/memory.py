"""The in-memory store: everything in dicts, durable only as long as the process lives.

For tests, benchmarks of the runtime's ceiling, and deployments that need no history across
restarts. Commits apply at once, with one checkpoint so that a run emitting in a tight loop still
lets the scheduler run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import attrs
import trio

from actors.events import RunStatus
from actors.store.base import (
    AppendEvents,
    CreateRun,
    GraphRecord,
    RunRecord,
    SaveGraph,
    StoreError,
    Write,
)


class MemoryStore:
    def __init__(self) -> None:
        self._runs: dict[str, RunRecord] = {}
        self._events: dict[str, list[str]] = {}
        self._graphs: dict[str, GraphRecord] = {}
        self.closed = False

    async def commit(self, writes: Sequence[Write]) -> None:
        if self.closed:
            raise StoreError("the store is closed")
        self._check(writes)
        for write in writes:
            if isinstance(write, CreateRun):
                run_id = write.record.info.run_id
                self._runs[run_id] = write.record
                self._events.setdefault(run_id, [])
            elif isinstance(write, AppendEvents):
                self._events[write.run_id] += write.frames
            elif isinstance(write, SaveGraph):
                self._graphs[write.graph.graph_id] = write.graph
            else:
                self._runs[write.run_id] = attrs.evolve(
                    self._runs[write.run_id],
                    status=write.status,
                    finished_at=write.finished_at,
                    event_count=write.event_count,
                )
        await trio.lowlevel.checkpoint()

    def _check(self, writes: Sequence[Write]) -> None:
        """Refuse the whole commit, as a transaction would, if any write does not fit."""
        created = {w.record.info.run_id for w in writes if isinstance(w, CreateRun)}
        counts: dict[str, int] = {}
        graphs = [w.graph.graph_id for w in writes if isinstance(w, SaveGraph)]
        for graph_id in graphs:
            if graph_id in self._graphs or graphs.count(graph_id) > 1:
                raise StoreError(f"graph {graph_id} already exists")
        for write in writes:
            if isinstance(write, SaveGraph):
                continue
            if isinstance(write, CreateRun):
                if write.record.info.run_id in self._runs:
                    raise StoreError(f"run {write.record.info.run_id} already exists")
                continue
            if write.run_id not in self._runs and write.run_id not in created:
                raise StoreError(f"run {write.run_id} does not exist")
            if isinstance(write, AppendEvents):
                expected = counts.get(write.run_id, len(self._events.get(write.run_id, ())))
                if write.first != expected:
                    raise StoreError(
                        f"event {write.first} of run {write.run_id} is not next ({expected})"
                    )
                counts[write.run_id] = expected + len(write.frames)

    async def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    async def list_runs(self, limit: int, status: RunStatus | None = None) -> list[RunRecord]:
        records = [r for r in self._runs.values() if status is None or r.status is status]
        records.sort(key=lambda r: r.created_at, reverse=True)
        return records[:limit]

    async def read_events(self, run_id: str, start: int, limit: int) -> list[str]:
        return self._events.get(run_id, [])[start : start + limit]

    async def count_events(self, run_id: str) -> int:
        return len(self._events.get(run_id, ()))

    async def unfinished_runs(self) -> list[RunRecord]:
        return [r for r in self._runs.values() if r.status is RunStatus.RUNNING]

    async def get_graph(self, graph_id: str) -> GraphRecord | None:
        return self._graphs.get(graph_id)


@asynccontextmanager
async def open_memory_store() -> AsyncIterator[MemoryStore]:
    store = MemoryStore()
    try:
        yield store
    finally:
        store.closed = True
