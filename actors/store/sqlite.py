"""The SQLite store, the embedded default: WAL mode, one writer task with group commit.

Every `commit` joins the writer's next round: one `BEGIN IMMEDIATE ... COMMIT` in a worker thread
for everything queued meanwhile, so the cost of a round trip is shared by all runs. Reads use a
second connection (WAL lets them run beside the writer) and see only committed events, which is
all a run ever publishes. `synchronous=NORMAL`: a commit survives a crash of the process; a power
cut may lose the last rounds.

Checkpoints (copying the WAL back into the database file, with its fsyncs) are off the commit
path: SQLite's automatic checkpoint would run inside whichever commit crossed 1,000 WAL pages,
and that commit, and every event waiting on it, took 25-100 ms instead of 1-3 (with 10,000 live
runs each emitting every 5 s). A third connection makes a PASSIVE checkpoint, which never blocks
the writer, every `CHECKPOINT_INTERVAL` seconds in its own thread, and lets the WAL start over
(a RESTART checkpoint, a short wait for the writer) only once it holds more than 64 MiB.

Events are rows in insertion order with a unique index on (run_id, idx), not a table clustered by
run (`WITHOUT ROWID`, the first layout): a round carrying one event each of many runs then appends
to the table's last pages and touches one small index entry per run, instead of rewriting a large
page of the table per run. A commit of 400 events of 400 runs (in a file of 80,000 events) took
14-15 ms with the clustered table and 6-7 ms with this one. A file in the first layout is
converted when it is opened (`_migrate`).
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import trio

from actors.events import RunInfo, RunStatus
from actors.store.base import (
    AppendEvents,
    CreateRun,
    FinishRun,
    GraphRecord,
    RunRecord,
    SaveGraph,
    Write,
)
from actors.store.group_commit import GroupCommitter

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    session_id TEXT NOT NULL,
    user_id TEXT,
    message TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    event_count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    frame TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_run ON events (run_id, idx);
CREATE TABLE IF NOT EXISTS graphs (
    graph_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

RUN_COLUMNS = (
    "run_id, workflow_id, workflow_name, session_id, user_id, message,"
    " status, created_at, finished_at, event_count"
)


CHECKPOINT_INTERVAL = 1.0  # seconds between checkpoints of the WAL into the database file
WAL_RESTART_FRAMES = 16_384  # 64 MiB of 4 KiB pages


BUSY_TIMEOUT_S = 5.0  # how long a connection waits for a lock another connection holds
WRITE_LOCK_RETRY_S = 0.0005  # the writer's pause between attempts to take the write lock


def _begin_writing(connection: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE on the writer, which has no busy timeout of its own once the store is open
    (`SQLiteStore`): while another connection holds the write lock (the checkpointer's RESTART,
    for some 10-25 ms every few seconds under load), try again every `WRITE_LOCK_RETRY_S`, for up
    to `BUSY_TIMEOUT_S`. SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ms... between
    attempts, so a commit that found the lock taken returned 19, 34 or 55 ms later (in `hold`,
    every 5 s), and every event of its round waited as long."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(WRITE_LOCK_RETRY_S)


@contextmanager
def _write_transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed if the block ends, rolled back if it raises."""
    _begin_writing(connection)
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


EVENTS_CLUSTERED_BY_RUN = "WITHOUT ROWID"  # in the `sql` of the first layout's events table


def _migrate(connection: sqlite3.Connection) -> None:
    """Convert an events table of the first layout (clustered by run) to the current one, in one
    transaction, keeping every row."""
    row = connection.execute("SELECT sql FROM sqlite_master WHERE name='events'").fetchone()
    if row is None or EVENTS_CLUSTERED_BY_RUN not in row[0].upper():
        return
    with _write_transaction(connection):
        connection.execute("ALTER TABLE events RENAME TO events_clustered")
        connection.execute(
            "CREATE TABLE events (run_id TEXT NOT NULL, idx INTEGER NOT NULL, frame TEXT NOT NULL)"
        )
        connection.execute(
            "INSERT INTO events (run_id, idx, frame)"
            " SELECT run_id, idx, frame FROM events_clustered ORDER BY run_id, idx"
        )
        connection.execute("DROP TABLE events_clustered")


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    connection.execute("PRAGMA wal_autocheckpoint=0")  # see `SQLiteStore.checkpoint_regularly`
    return connection


def _record(row: tuple) -> RunRecord:  # type: ignore[type-arg]
    run_id, workflow_id, workflow_name, session_id, user_id, message = row[:6]
    status, created_at, finished_at, event_count = row[6:]
    return RunRecord(
        info=RunInfo(run_id, workflow_id, workflow_name, session_id, user_id, message),
        status=RunStatus(status),
        created_at=created_at,
        finished_at=finished_at,
        event_count=event_count,
    )


EVENT_ROWS_PER_STATEMENT = 256  # 768 parameters a statement, far under SQLite's limit of 32,766


@functools.cache
def _insert_events_sql(rows: int) -> str:
    return "INSERT INTO events (run_id, idx, frame) VALUES " + ",".join(["(?,?,?)"] * rows)


def _insert_events(connection: sqlite3.Connection, appends: list[AppendEvents]) -> None:
    """Many rows per INSERT statement. The sqlite3 module lets go of the GIL around every step
    of a statement, and `executemany` steps once per row: each row then waits to take the GIL
    back from the busy event loop (up to the switch interval), which made the writer thread,
    not the CPU, the limit of a busy server."""
    values: list[str | int] = []
    for append in appends:
        run_id = append.run_id
        for index, frame in enumerate(append.frames, append.first):
            values += (run_id, index, frame)
    step = 3 * EVENT_ROWS_PER_STATEMENT
    for start in range(0, len(values), step):
        chunk = values[start : start + step]
        connection.execute(_insert_events_sql(len(chunk) // 3), chunk)


def _apply(connection: sqlite3.Connection, batch: list[Sequence[Write]]) -> None:
    creates, appends, finishes, graphs = [], [], [], []
    for writes in batch:
        for write in writes:
            if isinstance(write, AppendEvents):
                appends.append(write)
            elif isinstance(write, CreateRun):
                r = write.record
                i = r.info
                creates.append(
                    (i.run_id, i.workflow_id, i.workflow_name, i.session_id, i.user_id, i.message,
                     r.status.value, r.created_at, r.finished_at, r.event_count)
                )
            elif isinstance(write, FinishRun):
                finishes.append(
                    (write.status.value, write.finished_at, write.event_count, write.run_id)
                )
            elif isinstance(write, SaveGraph):
                g = write.graph
                graphs.append((g.graph_id, g.name, g.definition, g.created_at))
    with _write_transaction(connection):
        if creates:
            connection.executemany(
                f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", creates
            )
        if appends:
            _insert_events(connection, appends)
        if finishes:
            connection.executemany(
                "UPDATE runs SET status=?, finished_at=?, event_count=? WHERE run_id=?", finishes
            )
        if graphs:
            connection.executemany(
                "INSERT INTO graphs (graph_id, name, definition, created_at) VALUES (?,?,?,?)",
                graphs,
            )


def _checkpoint(connection: sqlite3.Connection) -> None:
    """A PASSIVE checkpoint never blocks the writer, but while commits keep coming it never
    backfills the whole WAL either, and only a whole backfill lets the WAL start over: so once
    the WAL is past `WAL_RESTART_FRAMES`, a RESTART checkpoint (which holds the writer back while
    it copies what the PASSIVE one left) has it start over."""
    _, frames, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    if frames > WAL_RESTART_FRAMES:
        connection.execute("PRAGMA wal_checkpoint(RESTART)")


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = _connect(path)
        _migrate(self._writer)
        self._writer.executescript(SCHEMA)
        self._writer.execute("PRAGMA busy_timeout=0")  # from now on, see `_begin_writing`
        self._reader = _connect(path)
        self._read_lock = trio.Lock()
        self._checkpointer = _connect(path)
        self._checkpoints = trio.CancelScope()
        self.committer = GroupCommitter(self._apply_batch)
        self.checkpoints = 0

    async def _apply_batch(self, batch: list[Sequence[Write]]) -> None:
        await trio.to_thread.run_sync(_apply, self._writer, batch)

    async def commit(self, writes: Sequence[Write]) -> None:
        await self.committer.commit(writes)

    async def checkpoint_regularly(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Checkpoint every `CHECKPOINT_INTERVAL` seconds until `stop_checkpoints`."""
        with self._checkpoints:
            task_status.started()
            while True:
                await trio.sleep(CHECKPOINT_INTERVAL)
                await self.checkpoint()

    def stop_checkpoints(self) -> None:
        self._checkpoints.cancel()

    async def checkpoint(self) -> None:
        """Copy what the WAL holds into the database file, as far as no reader still needs it."""
        await trio.to_thread.run_sync(_checkpoint, self._checkpointer)
        self.checkpoints += 1

    async def _query(self, sql: str, params: tuple) -> list[tuple]:  # type: ignore[type-arg]
        def run() -> list[tuple]:  # type: ignore[type-arg]
            return self._reader.execute(sql, params).fetchall()

        async with self._read_lock:
            return await trio.to_thread.run_sync(run)

    async def get_run(self, run_id: str) -> RunRecord | None:
        rows = await self._query(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id=?", (run_id,))
        return _record(rows[0]) if rows else None

    async def list_runs(self, limit: int, status: RunStatus | None = None) -> list[RunRecord]:
        if status is None:
            sql = f"SELECT {RUN_COLUMNS} FROM runs ORDER BY created_at DESC LIMIT ?"
            rows = await self._query(sql, (limit,))
        else:
            sql = f"SELECT {RUN_COLUMNS} FROM runs WHERE status=? ORDER BY created_at DESC LIMIT ?"
            rows = await self._query(sql, (status.value, limit))
        return [_record(row) for row in rows]

    async def read_events(self, run_id: str, start: int, limit: int) -> list[str]:
        rows = await self._query(
            "SELECT frame FROM events WHERE run_id=? AND idx>=? ORDER BY idx LIMIT ?",
            (run_id, start, limit),
        )
        return [frame for (frame,) in rows]

    async def count_events(self, run_id: str) -> int:
        rows = await self._query("SELECT COUNT(*) FROM events WHERE run_id=?", (run_id,))
        return int(rows[0][0])

    async def unfinished_runs(self) -> list[RunRecord]:
        rows = await self._query(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE status=?", (RunStatus.RUNNING.value,)
        )
        return [_record(row) for row in rows]

    async def get_graph(self, graph_id: str) -> GraphRecord | None:
        rows = await self._query(
            "SELECT graph_id, name, definition, created_at FROM graphs WHERE graph_id=?",
            (graph_id,),
        )
        return GraphRecord(*rows[0]) if rows else None

    def close(self) -> None:
        """The writer closes last: closing the last connection checkpoints the whole WAL."""
        self._checkpointer.close()
        self._reader.close()
        self._writer.close()


@asynccontextmanager
async def open_sqlite_store(path: str | Path) -> AsyncIterator[SQLiteStore]:
    """Open (creating if needed) the database at `path`; on exit, everything committed so far
    is durable and the connections are closed."""
    store = SQLiteStore(Path(path))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.committer.run)
            await nursery.start(store.checkpoint_regularly)
            try:
                yield store
            finally:
                store.committer.close()
                store.stop_checkpoints()
    finally:
        store.close()
