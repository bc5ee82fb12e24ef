"""The in-memory store: everything in dicts, durable only as long as the process lives.

For tests, benchmarks of the runtime's ceiling, and deployments that need no history across
restarts. Commits apply at once, with one checkpoint so that a run emitting in a tight loop still
lets the scheduler run. The fence (`actors.store.base`) is checked for the whole commit before
anything of it is applied, as a transaction would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import trio

from actors.events import RunStatus
from actors.store.base import (
    AppendEvents,
    GraphRecord,
    RunCursor,
    RunRecord,
    SaveGraph,
    StorageFailed,
    Write,
    WriteRefused,
)
from actors.store.fence import check


class MemoryStore:
    def __init__(self) -> None:
        self._runs: dict[str, RunRecord] = {}
        self._events: dict[str, list[str]] = {}
        self._graphs: dict[str, GraphRecord] = {}
        self.closed = False

    async def commit(self, writes: Sequence[Write]) -> None:
        if self.closed:
            raise StorageFailed("the store is closed")
        runs = self._check(writes)
        for write in writes:
            if isinstance(write, AppendEvents):
                self._events.setdefault(write.run_id, []).extend(write.frames)
            elif isinstance(write, SaveGraph):
                self._graphs[write.graph.graph_id] = write.graph
        self._runs.update(runs)
        await trio.lowlevel.checkpoint()

    def _check(self, writes: Sequence[Write]) -> dict[str, RunRecord]:
        """The run records as the commit leaves them; raises WriteRefused, before anything is
        applied, if any write does not fit."""
        graphs = [w.graph.graph_id for w in writes if isinstance(w, SaveGraph)]
        for graph_id in graphs:
            if graph_id in self._graphs or graphs.count(graph_id) > 1:
                raise WriteRefused(f"graph {graph_id} already exists")
        return check(writes, self._runs.get)

    async def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    async def list_runs(
        self,
        limit: int,
        status: RunStatus | None = None,
        *,
        workflow_id: str | None = None,
        run_id_prefix: str | None = None,
        before: RunCursor | None = None,
    ) -> list[RunRecord]:
        """Every run looked at, then sorted: as fast as the memory store needs to be."""
        records = [
            r
            for r in self._runs.values()
            if (status is None or r.status is status)
            and (workflow_id is None or r.info.workflow_id == workflow_id)
            and (run_id_prefix is None or r.info.run_id.startswith(run_id_prefix))
            and (before is None or before.precedes(r))
        ]
        records.sort(key=lambda r: (r.created_at, r.info.run_id), reverse=True)
        return records[: max(limit, 0)]

    async def count_runs(self) -> dict[RunStatus, int]:
        counts = dict.fromkeys(RunStatus, 0)
        for record in self._runs.values():
            counts[record.status] += 1
        return counts

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
