"""The store interface: what every store (memory, SQLite, later Redis) must offer the runtime.

Writes are plain data (`CreateRun`, `AppendEvents`, `FinishRun`, `ClaimRun`, `SaveGraph`,
`CheckWritable`) handed to `commit`, which returns only once they are durable in that store; a
run publishes an event only after that. Reads serve replay of finished runs, recovery, the HTTP
listing (pages of runs, filtered, after a `RunCursor`; counts by status), and graph definitions
(a graph id works across restarts).

The fence: one writer per run, enforced by the store, never by timing. A run's record holds the
epoch of its writer (the incarnation that may write it, `FIRST_EPOCH` for the one that created
it) and its event count, which is the index its next event must have. Every append and finish
names the writer's epoch and the index it expects to be next, and the store refuses it
(`WriteRefused`, the whole commit and nothing of it applied) unless both match and the run is
still running. An incarnation that takes a run over (recovery after a crash, the close of a run
interrupted by a stopped server) first commits `ClaimRun` with the next epoch, in the same commit
as its own writes: from then on every write of an older incarnation is refused, however late it
arrives. A store that cannot write at all raises `StorageFailed` instead.

A store several nodes share (`SharedStore`, the Redis store) adds ownership to the fence: each
run is written by the node that created it, while that node holds its lease; a node whose lease
lapsed (it was paused, or cut off from the store) has its writes refused (`OwnershipLost`), and
any node may claim a run whose owner's lease is gone. Its other nodes follow a run live through
the store (`watch`), ask its owner to cancel it (`request_cancel`), and hear what concerns them
as `Notice`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs
import trio

from actors.events import RunInfo, RunStatus
from actors.feed import Feed


FIRST_EPOCH = 1  # the epoch of the incarnation that creates a run


@attrs.frozen
class RunRecord:
    info: RunInfo
    status: RunStatus
    created_at: float
    finished_at: float | None = None
    event_count: int = 0  # durable events: the index the run's next event must have
    epoch: int = FIRST_EPOCH  # the incarnation that may write the run
    node: str | None = None  # in a store several nodes share: the node that owns the run


@attrs.frozen
class RunCursor:
    """Where a page of runs ended: its last run's `created_at` and `run_id`. Runs are listed in
    the order (created_at, run_id), both descending (run ids compared by code point), and the
    next page holds the runs after this one in that order: a run created since, being newer,
    never shifts the pages that follow, so paging repeats and skips none."""

    created_at: float
    run_id: str

    @classmethod
    def of(cls, record: RunRecord) -> RunCursor:
        return cls(record.created_at, record.info.run_id)

    def precedes(self, record: RunRecord) -> bool:
        """Whether `record` comes after this cursor in the listing order."""
        return (record.created_at, record.info.run_id) < (self.created_at, self.run_id)


LAST_CODE_POINT = 0x10FFFF
SURROGATES = range(0xD800, 0xE000)  # not characters: UTF-8, and so a store, holds none


def prefix_end(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`, in the order of code
    points (which is that of their UTF-8 bytes, SQLite's and Redis's); None if there is none.
    The run ids that start with `prefix` are those from `prefix` up to it, excluded."""
    stripped = prefix.rstrip(chr(LAST_CODE_POINT))
    if not stripped:
        return None
    following = ord(stripped[-1]) + 1
    if following in SURROGATES:
        following = SURROGATES.stop
    return stripped[:-1] + chr(following)


@attrs.frozen
class CreateRun:
    record: RunRecord


@attrs.frozen
class AppendEvents:
    """Consecutive events of one run: `frames[i]` is the event of index `first + i`. A run hands
    over everything it appended since its last commit as one write. Refused unless `first` is
    the run's event count and `epoch` its writer's."""

    run_id: str
    first: int
    frames: Sequence[str]
    epoch: int = FIRST_EPOCH


@attrs.frozen
class FinishRun:
    """The run ends with `status` after `event_count` events; refused unless that is the run's
    event count and `epoch` its writer's."""

    run_id: str
    status: RunStatus
    finished_at: float
    event_count: int
    epoch: int = FIRST_EPOCH


@attrs.frozen
class ClaimRun:
    """The incarnation of `epoch` owns the running run from now on; refused unless the run's
    epoch is `epoch - 1`, so of two incarnations claiming the same run one wins."""

    run_id: str
    epoch: int


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


@attrs.frozen
class CheckWritable:
    """Writes a little and nothing that is read: whether the store can write again after it
    failed (`StorageFailed`)."""

    checked_at: float


Write = CreateRun | AppendEvents | FinishRun | ClaimRun | SaveGraph | CheckWritable


class StoreError(Exception):
    """A commit was not made durable; nothing of it was applied."""


class WriteRefused(StoreError):
    """The store refused a write that does not fit what it holds: an append or finish of an
    older incarnation or not at the run's next index, a run or graph that already exists. The
    store itself is fine."""


class OwnershipLost(WriteRefused):
    """A shared store refused a write of a node that no longer holds the run: the node's lease
    lapsed (it was paused or cut off from the store for longer than the lease), or another node
    has taken the run over."""


class HistoryGone(LookupError):
    """The run's history is no longer kept (it finished longer ago than the retention)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(
            f"the history of run {run_id} is gone: it finished longer ago than the server keeps"
            " histories (--retention)"
        )
        self.run_id = run_id


class StorageFailed(StoreError):
    """The store could not write: the disk is full, an I/O error, the store is closed. The
    message names the store's own error."""


class StoreInUse(Exception):
    """Another process owns the store (`runcast serve` takes a store for itself alone)."""


class Store(Protocol):
    async def commit(self, writes: Sequence[Write]) -> None:
        """Make `writes` durable, all or none, in order; return once they are. Raises
        WriteRefused or StorageFailed, with nothing applied."""

    async def get_run(self, run_id: str) -> RunRecord | None: ...

    async def list_runs(
        self,
        limit: int,
        status: RunStatus | None = None,
        *,
        workflow_id: str | None = None,
        run_id_prefix: str | None = None,
        before: RunCursor | None = None,
    ) -> list[RunRecord]:
        """At most `limit` runs, newest first (`RunCursor`'s order), of `status`, of the
        workflow `workflow_id`, whose run id starts with `run_id_prefix`, after `before`: each
        filter only when given."""

    async def count_runs(self) -> dict[RunStatus, int]:
        """How many runs the store holds, by status (every status, 0 included)."""

    async def read_events(self, run_id: str, start: int, limit: int) -> list[str]:
        """Frames of `run_id` from index `start`, at most `limit`, in index order."""

    async def count_events(self, run_id: str) -> int:
        """The run's durable events, the index of its next one (0 for an unknown run)."""

    async def unfinished_runs(self) -> list[RunRecord]:
        """Runs whose status is still RUNNING: at start-up these were interrupted."""

    async def get_graph(self, graph_id: str) -> GraphRecord | None: ...


@attrs.frozen
class CancelRequested:
    """Another node asked this one, the run's owner, to cancel it."""

    run_id: str
    reason: str


@attrs.frozen
class LeaseLost:
    """This node's lease lapsed: the runs it owned are no longer its to write (another node
    closes them); it holds a new lease from now on."""

    why: str


@attrs.frozen
class RecheckCancels:
    """Cancel requests for this node's runs may have been made while it could not hear them:
    read them from the runs' records (`requested_cancels`)."""


Notice = CancelRequested | LeaseLost | RecheckCancels


@runtime_checkable
class SharedStore(Store, Protocol):
    """A store several nodes share. `unfinished_runs` gives the running runs whose owner's lease
    is gone (at start-up, those this node left when it stopped), for any node to close; a node
    looks for them every `sweep_period` seconds."""

    node_id: str
    sweep_period: float

    @property
    def failure(self) -> str | None:
        """Why the node cannot use the store now (unreachable, its lease not renewed), or None."""

    async def watch(self, run_id: str, capacity: int) -> Feed:
        """A feed of the events of `run_id` committed from now on (by whichever node), taken
        before the caller reads the run's history. Raises StorageFailed."""

    async def request_cancel(self, run_id: str, reason: str) -> bool:
        """Ask the owner of the running `run_id` to cancel it; whether this request did (False:
        the run is finished, unknown, or being cancelled). Raises StorageFailed."""

    async def requested_cancels(self, run_ids: Sequence[str]) -> dict[str, str]:
        """The cancel requests recorded for the running runs of `run_ids`: run id -> reason.
        Raises StorageFailed."""

    def notices(self) -> trio.MemoryReceiveChannel[Notice]:
        """What concerns this node: cancel requests for its runs, the loss of its lease."""
