"""The store interface: what every store (memory, SQLite, later Redis) must offer the runtime.

Writes are plain data (`CreateRun`, `AppendEvents`, `FinishRun`, `SaveGraph`) handed to `commit`,
which returns only once they are durable in that store; a run publishes an event only after that.
Reads serve replay of finished runs, recovery, the HTTP listing, and graph definitions (a graph id
works across restarts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from actors.events import RunInfo, RunStatus


@attrs.frozen
class RunRecord:
    info: RunInfo
    status: RunStatus
    created_at: float
    finished_at: float | None = None
    event_count: int = 0  # kept up to date when the run finishes; live runs report their own


@attrs.frozen
class CreateRun:
    record: RunRecord


@attrs.frozen
class AppendEvents:
    """Consecutive events of one run: `frames[i]` is the event of index `first + i`. A run hands
    over everything it appended since its last commit as one write."""

    run_id: str
    first: int
    frames: Sequence[str]


@attrs.frozen
class FinishRun:
    run_id: str
    status: RunStatus
    finished_at: float
    event_count: int


@attrs.frozen
class GraphRecord:
    """A graph definition as created: `definition` is its JSON text, validated before saving."""

    graph_id: str
    name: str
    definition: str
    created_at: float


@attrs.frozen
class SaveGraph:
    graph: GraphRecord


Write = CreateRun | AppendEvents | FinishRun | SaveGraph


class StoreError(Exception):
    """A write could not be made durable."""


class Store(Protocol):
    async def commit(self, writes: Sequence[Write]) -> None:
        """Make `writes` durable, all or none; return once they are."""

    async def get_run(self, run_id: str) -> RunRecord | None: ...

    async def list_runs(self, limit: int, status: RunStatus | None = None) -> list[RunRecord]:
        """Newest first."""

    async def read_events(self, run_id: str, start: int, limit: int) -> list[str]:
        """Frames of `run_id` from index `start`, at most `limit`, in index order."""

    async def count_events(self, run_id: str) -> int: ...

    async def unfinished_runs(self) -> list[RunRecord]:
        """Runs whose status is still RUNNING: at start-up these were interrupted."""

    async def get_graph(self, graph_id: str) -> GraphRecord | None: ...
