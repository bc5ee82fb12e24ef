"""The SQLite store, the embedded default: WAL mode, one transaction per commit, one process per
file.

Every `commit` is one `BEGIN IMMEDIATE ... COMMIT` in a worker thread, one at a time. Batching
belongs to the caller: the runtime's publisher (`actors.publisher`) hands over every ready run's
writes as one commit, so the cost of a round trip is shared by all runs. Reads use a
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

The fence (`actors.store.base`) lives in the statements themselves: an append is an UPDATE of
its run's event count that matches only the writer's epoch and the expected next index, and the
commit is refused (rolled back whole) unless every such UPDATE matched its run. `actors.store.fence`
then names the write at fault.

One process per file: opening the store takes an exclusive `flock` on `PATH.lock`, which holds
the owner's process id, before it reads anything, and a second process is refused at once with
`StoreInUse` naming the file and that process. The kernel releases the lock when the process ends,
however it ends, so a killed server leaves nothing stale behind.

Errors are SQLite's own: a commit that fails (the disk is full, an I/O error) raises
`StorageFailed` with SQLite's message, and the store keeps working once the cause is gone. A
checkpoint that fails is logged and tried again at the next interval.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import trio

from actors.events import RunInfo, RunStatus
from actors.store.base import (
    AppendEvents,
    ClaimRun,
    CreateRun,
    FinishRun,
    GraphRecord,
    RunCursor,
    RunRecord,
    SaveGraph,
    StorageFailed,
    StoreInUse,
    Write,
    WriteRefused,
    prefix_end,
)
from actors.store.fence import first_refusal

log = logging.getLogger(__name__)

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
    event_count INTEGER NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 1
);
DROP INDEX IF EXISTS runs_by_status;
DROP INDEX IF EXISTS runs_by_created;
CREATE INDEX IF NOT EXISTS runs_newest ON runs (created_at, run_id);
CREATE INDEX IF NOT EXISTS runs_by_status_newest ON runs (status, created_at, run_id);
CREATE INDEX IF NOT EXISTS runs_by_workflow_newest ON runs (workflow_id, created_at, run_id);
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
CREATE TABLE IF NOT EXISTS writable (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at REAL NOT NULL
);
"""

RUN_COLUMNS = (
    "run_id, workflow_id, workflow_name, session_id, user_id, message,"
    " status, created_at, finished_at, event_count, epoch"
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
    """One write transaction: committed if the block ends, rolled back if it raises. SQLite
    rolls back on its own after some errors (a full disk among them); a ROLLBACK then would
    fail too ("no transaction is active") and hide the error that matters."""
    _begin_writing(connection)
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


EVENTS_CLUSTERED_BY_RUN = "WITHOUT ROWID"  # in the `sql` of the first layout's events table


def _migrate(connection: sqlite3.Connection) -> None:
    """Bring a file of an earlier layout to the current one, each step in one transaction."""
    _cluster_events_by_insertion(connection)
    _fence_runs(connection)


def _cluster_events_by_insertion(connection: sqlite3.Connection) -> None:
    """Convert an events table of the first layout (clustered by run) to the current one,
    keeping every row."""
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


def _fence_runs(connection: sqlite3.Connection) -> None:
    """Give a runs table from before the fence its `epoch` column, and each running run the
    event count the fence checks appends against: one past its highest stored index, so that
    no stored index is ever used again (a history an unfenced writer left with a gap keeps it,
    but grows only past its end)."""
    columns = [row[1] for row in connection.execute("PRAGMA table_info(runs)")]
    if not columns or "epoch" in columns:
        return
    with _write_transaction(connection):
        connection.execute("ALTER TABLE runs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1")
        connection.execute(
            "UPDATE runs SET event_count ="
            " (SELECT COALESCE(MAX(idx) + 1, 0) FROM events WHERE events.run_id = runs.run_id)"
            " WHERE status = ?",
            (RunStatus.RUNNING.value,),
        )


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    connection.execute("PRAGMA wal_autocheckpoint=0")  # see `SQLiteStore.checkpoint_regularly`
    return connection


def _record(row: tuple[Any, ...]) -> RunRecord:
    """A run from a row of RUN_COLUMNS."""
    run_id, workflow_id, workflow_name, session_id, user_id, message = row[:6]
    status, created_at, finished_at, event_count, epoch = row[6:]
    return RunRecord(
        info=RunInfo(run_id, workflow_id, workflow_name, session_id, user_id, message),
        status=RunStatus(status),
        created_at=created_at,
        finished_at=finished_at,
        event_count=event_count,
        epoch=epoch,
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


def _runs_query(
    status: RunStatus | None,
    workflow_id: str | None,
    run_id_prefix: str | None,
    before: RunCursor | None,
) -> tuple[str, list[object]]:
    """The SELECT of a page of runs (its LIMIT the last parameter, not among `params`), and its
    parameters. Each filter walks one of the runs' indexes newest first (`runs_newest`,
    `runs_by_status_newest`, `runs_by_workflow_newest`), so a page reads about its own rows
    whatever the table holds; a run id prefix is a range of the primary key, its matches then
    sorted."""
    clauses: list[str] = []
    params: list[object] = []
    if status is not None:
        clauses.append("status = ?")
        params.append(status.value)
    if workflow_id is not None:
        clauses.append("workflow_id = ?")
        params.append(workflow_id)
    if run_id_prefix:
        clauses.append("run_id >= ?")
        params.append(run_id_prefix)
        upper = prefix_end(run_id_prefix)
        if upper is not None:
            clauses.append("run_id < ?")
            params.append(upper)
    if before is not None:
        # (created_at, run_id) < the cursor's, as a range of created_at the indexes can seek
        clauses.append("created_at <= ? AND (created_at < ? OR run_id < ?)")
        params += (before.created_at, before.created_at, before.run_id)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    order = " ORDER BY created_at DESC, run_id DESC LIMIT ?"
    return f"SELECT {RUN_COLUMNS} FROM runs{where}{order}", params


RUNNING = RunStatus.RUNNING.value


class _Unmatched(Exception):
    """A fenced UPDATE matched no run: the transaction is rolled back, then the refusal named."""


def _apply(connection: sqlite3.Connection, path: Path, writes: Sequence[Write]) -> None:
    """Apply `writes` in one transaction; raises WriteRefused (nothing applied) if one does not
    fit, StorageFailed if SQLite could not write."""
    try:
        with _write_transaction(connection):
            if not _apply_writes(connection, writes):
                raise _Unmatched()
    except _Unmatched:
        raise WriteRefused(_refusal(connection, writes)) from None
    except sqlite3.IntegrityError as error:
        raise WriteRefused(_refusal(connection, writes, str(error))) from None
    except sqlite3.Error as error:
        raise StorageFailed(f"{error} (SQLite, writing {path})") from None


def _apply_writes(connection: sqlite3.Connection, writes: Sequence[Write]) -> bool:
    """Execute the writes by kind, claims before creates before appends before finishes:
    that is the order of the writes of one run in a commit. False if a fenced UPDATE did not
    match its run (the caller then rolls back)."""
    claims: list[tuple[object, ...]] = []
    creates: list[tuple[object, ...]] = []
    fenced_appends: list[tuple[object, ...]] = []
    appends: list[AppendEvents] = []
    finishes: list[tuple[object, ...]] = []
    graphs: list[tuple[object, ...]] = []
    checks: list[tuple[object, ...]] = []
    for write in writes:
        if isinstance(write, AppendEvents):
            appends.append(write)
            fenced_appends.append(
                (len(write.frames), write.run_id, write.epoch, write.first, RUNNING)
            )
        elif isinstance(write, CreateRun):
            r = write.record
            i = r.info
            creates.append(
                (i.run_id, i.workflow_id, i.workflow_name, i.session_id, i.user_id, i.message,
                 r.status.value, r.created_at, r.finished_at, r.event_count, r.epoch)
            )
        elif isinstance(write, FinishRun):
            finishes.append(
                (write.status.value, write.finished_at, write.run_id, write.epoch,
                 write.event_count, RUNNING)
            )
        elif isinstance(write, ClaimRun):
            claims.append((write.epoch, write.run_id, write.epoch - 1, RUNNING))
        elif isinstance(write, SaveGraph):
            g = write.graph
            graphs.append((g.graph_id, g.name, g.definition, g.created_at))
        else:
            checks.append((write.checked_at,))
    if claims and not _all_match(
        connection, "UPDATE runs SET epoch=? WHERE run_id=? AND epoch=? AND status=?", claims
    ):
        return False
    if creates:
        connection.executemany(
            f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", creates
        )
    if appends:
        if not _all_match(
            connection,
            "UPDATE runs SET event_count=event_count+?"
            " WHERE run_id=? AND epoch=? AND event_count=? AND status=?",
            fenced_appends,
        ):
            return False
        _insert_events(connection, appends)
    if finishes and not _all_match(
        connection,
        "UPDATE runs SET status=?, finished_at=?"
        " WHERE run_id=? AND epoch=? AND event_count=? AND status=?",
        finishes,
    ):
        return False
    if graphs:
        connection.executemany(
            "INSERT INTO graphs (graph_id, name, definition, created_at) VALUES (?,?,?,?)",
            graphs,
        )
    if checks:
        connection.executemany(
            "INSERT OR REPLACE INTO writable (id, checked_at) VALUES (1, ?)", checks
        )
    return True


def _all_match(connection: sqlite3.Connection, sql: str, rows: list[tuple[object, ...]]) -> bool:
    """Run a fenced UPDATE once per row; whether each matched its run (a run is one row)."""
    return connection.executemany(sql, rows).rowcount == len(rows)


def _refusal(connection: sqlite3.Connection, writes: Sequence[Write], fallback: str = "") -> str:
    """What was refused, read after the rollback: the fence's words for the first write that
    does not fit, or else SQLite's (a graph id that exists already)."""

    def current(run_id: str) -> RunRecord | None:
        row = connection.execute(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id=?", (run_id,)
        ).fetchone()
        return None if row is None else _record(row)

    return first_refusal(writes, current) or fallback or "the commit did not fit the store"


def _checkpoint(connection: sqlite3.Connection) -> None:
    """A PASSIVE checkpoint never blocks the writer, but while commits keep coming it never
    backfills the whole WAL either, and only a whole backfill lets the WAL start over: so once
    the WAL is past `WAL_RESTART_FRAMES`, a RESTART checkpoint (which holds the writer back while
    it copies what the PASSIVE one left) has it start over."""
    _, frames, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    if frames > WAL_RESTART_FRAMES:
        connection.execute("PRAGMA wal_checkpoint(RESTART)")


def _lock(path: Path) -> int:
    """Take the store's lock, `PATH.lock`, and write this process's id into it; the file
    descriptor holding the lock. Raises StoreInUse when another process holds it."""
    lock_path = path.with_name(path.name + ".lock")
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(descriptor)
        raise StoreInUse(
            f"the store {path} is in use by another runcast process (pid {holder}, holding"
            f" {lock_path}); stop it, or give this server another --store"
        ) from None
    except BaseException:
        os.close(descriptor)
        raise
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    return descriptor


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = _lock(path)
        try:
            self._writer = _connect(path)
            _migrate(self._writer)
            self._writer.executescript(SCHEMA)
        except BaseException:
            os.close(self._lock)
            raise
        self._writer.execute("PRAGMA busy_timeout=0")  # from now on, see `_begin_writing`
        self._reader = _connect(path)
        self._read_lock = trio.Lock()
        self._checkpointer = _connect(path)
        self._checkpoints = trio.CancelScope()
        self._write_lock = trio.Lock()
        self._closed = False
        self.checkpoints = 0

    async def commit(self, writes: Sequence[Write]) -> None:
        if self._closed:
            raise StorageFailed(f"the store {self.path} is closed")
        async with self._write_lock:
            await trio.to_thread.run_sync(_apply, self._writer, self.path, writes)

    async def checkpoint_regularly(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Checkpoint every `CHECKPOINT_INTERVAL` seconds until `stop_checkpoints`."""
        with self._checkpoints:
            task_status.started()
            failing = False
            while True:
                await trio.sleep(CHECKPOINT_INTERVAL)
                try:
                    await self.checkpoint()
                except sqlite3.Error as error:
                    if not failing:
                        log.warning("checkpoint of %s failed, retrying: %s", self.path, error)
                    failing = True
                else:
                    if failing:
                        log.info("checkpoint of %s works again", self.path)
                    failing = False

    def refuse_commits(self) -> None:
        """From now on `commit` raises StorageFailed; a commit under way finishes first."""
        self._closed = True

    def stop_checkpoints(self) -> None:
        self._checkpoints.cancel()

    async def checkpoint(self) -> None:
        """Copy what the WAL holds into the database file, as far as no reader still needs it."""
        await trio.to_thread.run_sync(_checkpoint, self._checkpointer)
        self.checkpoints += 1

    async def _query(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            return self._reader.execute(sql, params).fetchall()

        async with self._read_lock:
            return await trio.to_thread.run_sync(run)

    async def get_run(self, run_id: str) -> RunRecord | None:
        rows = await self._query(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id=?", (run_id,))
        return _record(rows[0]) if rows else None

    async def list_runs(
        self,
        limit: int,
        status: RunStatus | None = None,
        *,
        workflow_id: str | None = None,
        run_id_prefix: str | None = None,
        before: RunCursor | None = None,
    ) -> list[RunRecord]:
        sql, params = _runs_query(status, workflow_id, run_id_prefix, before)
        rows = await self._query(sql, (*params, max(limit, 0)))
        return [_record(row) for row in rows]

    async def count_runs(self) -> dict[RunStatus, int]:
        counts = dict.fromkeys(RunStatus, 0)
        for status, count in await self._query(
            "SELECT status, COUNT(*) FROM runs GROUP BY status", ()
        ):
            counts[RunStatus(status)] = count
        return counts

    async def read_events(self, run_id: str, start: int, limit: int) -> list[str]:
        rows = await self._query(
            "SELECT frame FROM events WHERE run_id=? AND idx>=? ORDER BY idx LIMIT ?",
            (run_id, start, limit),
        )
        return [frame for (frame,) in rows]

    async def count_events(self, run_id: str) -> int:
        rows = await self._query("SELECT event_count FROM runs WHERE run_id=?", (run_id,))
        return int(rows[0][0]) if rows else 0

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
        os.close(self._lock)


@asynccontextmanager
async def open_sqlite_store(path: str | Path) -> AsyncIterator[SQLiteStore]:
    """Open (creating if needed) the database at `path`; on exit, everything committed so far
    is durable and the connections are closed."""
    store = SQLiteStore(Path(path))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.checkpoint_regularly)
            try:
                yield store
            finally:
                store.refuse_commits()
                store.stop_checkpoints()
    finally:
        store.close()
