"""actors/store/sqlite.py, beyond the shared contract (test_contract.py): histories survive closing
and reopening the file (guarantee 3), a bad commit among concurrent ones fails only its own caller, one process owns a file, and a full database fails
commits with SQLite's own error until it has room again."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from actors.events import RunStatus
from actors.store import (
    AppendEvents,
    FinishRun,
    RunCursor,
    StorageFailed,
    StoreError,
    StoreInUse,
    WriteRefused,
)
from actors.store import sqlite as sqlite_store
from actors.store.sqlite import EVENT_ROWS_PER_STATEMENT, SQLiteStore, open_sqlite_store
from tests.actors.store.test_contract import append, appends, create, frame, info


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "runcast.db"


async def test_data_survives_closing_and_reopening_the_file(path: Path) -> None:
    async with open_sqlite_store(path) as store:
        await store.commit([create("done", 1.0), *appends("done", 0, 5)])
        await store.commit([FinishRun("done", RunStatus.COMPLETED, 3.0, 5)])
        await store.commit([create("live", 2.0), *appends("live", 0, 2)])
        before = (await store.list_runs(10), await store.read_events("done", 0, 10))
    async with open_sqlite_store(path) as store:
        assert (await store.list_runs(10), await store.read_events("done", 0, 10)) == before
        assert await store.read_events("live", 0, 10) == [frame("live", 0), frame("live", 1)]
        assert [r.info.run_id for r in await store.unfinished_runs()] == ["live"]
        done = await store.get_run("done")
        assert done is not None
        assert (done.status, done.finished_at, done.event_count) == (RunStatus.COMPLETED, 3.0, 5)
        assert done.info == info("done")
        # appending continues where the history ends, and duplicates are still refused
        await store.commit(appends("live", 2, 3))
        with pytest.raises(StoreError):
            await store.commit([append("live", 0)])
    async with open_sqlite_store(path) as store:
        assert await store.count_events("live") == 3


async def test_the_file_is_in_wal_mode_with_the_schema(path: Path) -> None:
    async with open_sqlite_store(path):
        pass
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
        assert {"runs", "events"} <= tables
    finally:
        connection.close()


async def test_committed_rows_are_on_disk_for_another_connection(path: Path) -> None:
    """Once commit returns the rows are committed: a separate plain sqlite3 connection sees them
    while the store is still open."""
    async with open_sqlite_store(path) as store:
        await store.commit([create("r"), *appends("r", 0, 3)])
        connection = sqlite3.connect(path)
        try:
            rows = connection.execute(
                "SELECT idx, frame FROM events WHERE run_id='r' ORDER BY idx"
            ).fetchall()
        finally:
            connection.close()
    assert rows == [(i, frame("r", i)) for i in range(3)]


async def concurrent_commits(
    store: SQLiteStore, commits: dict[str, list[AppendEvents]]
) -> dict[str, BaseException | None]:
    """Start every commit at once; return each caller's outcome."""
    results: dict[str, BaseException | None] = {}

    async def commit(name: str, writes: list[AppendEvents]) -> None:
        try:
            await store.commit(writes)
        except StoreError as error:
            results[name] = error
        else:
            results[name] = None

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for name, writes in commits.items():
                nursery.start_soon(commit, name, writes)
    return results


async def test_a_duplicate_fails_only_its_caller_among_concurrent_commits(path: Path) -> None:
    runs = [f"r{i}" for i in range(10)]
    async with open_sqlite_store(path) as store:
        await store.commit([create(r, float(i)) for i, r in enumerate(runs)])
        await store.commit(appends("r0", 0, 2))
        commits = {r: appends(r, 0, 3) for r in runs[1:]}
        commits["dup"] = [append("r0", 2), append("r0", 1)]  # idx 1 already there
        results = await concurrent_commits(store, commits)
        dup = results.pop("dup")
        assert isinstance(dup, WriteRefused) and "event 1 of run r0 is not next (3)" in str(dup)
        assert results == {r: None for r in runs[1:]}
        for run_id in runs[1:]:
            assert await store.read_events(run_id, 0, 10) == [frame(run_id, i) for i in range(3)]
        assert await store.count_events("r0") == 2  # the bad commit left nothing behind
    async with open_sqlite_store(path) as store:
        assert [await store.count_events(r) for r in runs] == [2] + [3] * 9


async def test_many_concurrent_commits_all_land(path: Path) -> None:
    callers = 200
    async with open_sqlite_store(path) as store:
        await store.commit([create(f"r{i}", float(i)) for i in range(callers)])
        results = await concurrent_commits(
            store, {f"r{i}": appends(f"r{i}", 0, 2) for i in range(callers)}
        )
        assert set(results.values()) == {None}
    async with open_sqlite_store(path) as store:
        for i in range(callers):
            assert await store.count_events(f"r{i}") == 2


async def test_rounds_larger_than_one_insert_statement_keep_every_event_in_order(path: Path) -> None:
    sizes = {"a": EVENT_ROWS_PER_STATEMENT * 2 + 7, "b": 1, "c": EVENT_ROWS_PER_STATEMENT}
    async with open_sqlite_store(path) as store:
        await store.commit([create(run_id, 1.0) for run_id in sizes])
        await store.commit([event for run_id, n in sizes.items() for event in appends(run_id, 0, n)])
    async with open_sqlite_store(path) as store:
        for run_id, n in sizes.items():
            assert await store.read_events(run_id, 0, n + 1) == [frame(run_id, i) for i in range(n)]


async def test_commit_after_close_is_refused_and_not_written(path: Path) -> None:
    async with open_sqlite_store(path) as store:
        await store.commit([create("r")])
    with pytest.raises(StoreError, match="closed"):
        await store.commit([append("r", 0)])
    async with open_sqlite_store(path) as store:
        assert await store.count_events("r") == 0


async def test_commits_never_checkpoint_the_checkpointer_task_does(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No commit copies the WAL into the database file (that waited for fsyncs inside commits);
    `checkpoint` does, in its own thread, and the database file alone then holds the rows."""
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_INTERVAL", 3600.0)  # no periodic one meanwhile
    copy = path.with_name("copy.db")
    async with open_sqlite_store(path) as store:
        for round_number in range(300):  # far more WAL pages than SQLite's automatic 1,000-page mark
            run_id = f"run-{round_number}"
            await store.commit([create(run_id, 1.0), *appends(run_id, 0, 20)])
        copy.write_bytes(path.read_bytes())  # the database file without its WAL
        assert _count_events(copy) == 0
        await store.checkpoint()
        copy.write_bytes(path.read_bytes())
        assert _count_events(copy) == 300 * 20
        assert store.checkpoints >= 1


async def test_closing_leaves_everything_in_the_database_file(path: Path) -> None:
    async with open_sqlite_store(path) as store:
        await store.commit([create("run", 1.0), *appends("run", 0, 50)])
    assert not path.with_name(path.name + "-wal").exists()
    assert _count_events(path) == 50


def _count_events(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
        return connection.execute("SELECT COUNT(*) FROM events").fetchone()[0] if "events" in tables else 0
    finally:
        connection.close()


FIRST_LAYOUT = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL, workflow_name TEXT NOT NULL,
    session_id TEXT NOT NULL, user_id TEXT, message TEXT NOT NULL, status TEXT NOT NULL,
    created_at REAL NOT NULL, finished_at REAL, event_count INTEGER NOT NULL
);
CREATE TABLE events (
    run_id TEXT NOT NULL, idx INTEGER NOT NULL, frame TEXT NOT NULL, PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;
"""


async def test_a_file_of_the_first_layout_keeps_every_event_and_takes_new_ones(path: Path) -> None:
    connection = sqlite3.connect(path)
    connection.executescript(FIRST_LAYOUT)
    connection.executemany(
        "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?)",
        [
            ("old", "wf", "Workflow", "s", None, "m", "COMPLETED", 1.0, 2.0, 3),
            ("live", "wf", "Workflow", "s", None, "m", "RUNNING", 1.0, None, 0),
        ],
    )
    connection.executemany(
        "INSERT INTO events VALUES (?,?,?)",
        [("old", i, frame("old", i)) for i in (2, 0, 1)] + [("live", 0, frame("live", 0))],
    )
    connection.commit()
    connection.close()
    async with open_sqlite_store(path) as store:
        assert await store.read_events("old", 0, 10) == [frame("old", i) for i in range(3)]
        assert await store.count_events("live") == 1  # a running run's count, from its events
        await store.commit(appends("live", 1, 2))
        assert await store.read_events("live", 0, 10) == [frame("live", i) for i in range(2)]
        with pytest.raises(StoreError):
            await store.commit([append("old", 1)])  # (run, index) is still unique
    connection = sqlite3.connect(path)
    try:
        (sql,) = connection.execute("SELECT sql FROM sqlite_master WHERE name='events'").fetchone()
        assert "WITHOUT ROWID" not in sql.upper()
        assert connection.execute("SELECT COUNT(*) FROM events").fetchone() == (5,)
    finally:
        connection.close()


async def test_a_commit_waits_while_another_connection_holds_the_write_lock(path: Path) -> None:
    """The writer takes the lock as soon as it is free (it retries on its own, see
    `_begin_writing`), and the rows are written once."""
    async with open_sqlite_store(path) as store:
        await store.commit([create("r")])
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            other.execute("BEGIN IMMEDIATE")  # as the checkpointer's RESTART holds it
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store.commit, appends("r", 0, 3))
                await trio.sleep(0.1)
                assert await store.count_events("r") == 0  # still waiting for the lock
                other.execute("COMMIT")
            assert await store.read_events("r", 0, 10) == [frame("r", i) for i in range(3)]
        finally:
            other.close()


async def test_a_commit_fails_by_name_when_the_write_lock_stays_taken(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_S", 0.2)
    async with open_sqlite_store(path) as store:
        await store.commit([create("r")])
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreError, match="database is locked"):
                await store.commit(appends("r", 0, 2))
            other.execute("ROLLBACK")
        finally:
            other.close()
        await store.commit(appends("r", 0, 2))  # nothing of the failed commit was written
        assert await store.count_events("r") == 2


# -- one process per file ------------------------------------------------------------------------


async def test_a_second_opener_of_the_file_is_refused_naming_the_file_and_the_holder(path: Path) -> None:
    async with open_sqlite_store(path) as store:
        await store.commit([create("r"), *appends("r", 0, 2)])
        with pytest.raises(StoreInUse) as refused:
            async with open_sqlite_store(path):
                pass
        assert str(path) in str(refused.value) and f"pid {os.getpid()}" in str(refused.value)
        await store.commit(appends("r", 2, 3))  # the owner goes on undisturbed
    async with open_sqlite_store(path) as store:  # closing released the lock
        assert await store.count_events("r") == 3


LOCK_AND_SLEEP = """
import sys, trio
from actors.store.sqlite import open_sqlite_store

async def main():
    async with open_sqlite_store(sys.argv[1]):
        print("locked", flush=True)
        await trio.sleep(60)

trio.run(main)
"""


async def test_a_killed_owner_leaves_no_stale_lock(path: Path) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", LOCK_AND_SLEEP, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None and owner.stdout.readline() == "locked\n"
        with pytest.raises(StoreInUse, match=f"pid {owner.pid}"):
            async with open_sqlite_store(path):
                pass
    finally:
        owner.kill()
        owner.wait()
    async with open_sqlite_store(path) as store:
        await store.commit([create("r")])


# -- storage faults ------------------------------------------------------------------------------


async def test_a_full_database_fails_commits_with_sqlites_error_and_works_again_once_it_has_room(
    path: Path,
) -> None:
    """`max_page_count` makes SQLite itself answer "database or disk is full", as a full disk
    would; the commit raises that error (not the "no transaction is active" of a ROLLBACK after
    SQLite rolled back on its own), nothing of it is applied, and once there is room again the
    same store commits."""
    async with open_sqlite_store(path) as store:
        await store.commit([create("r"), *appends("r", 0, 1)])
        (pages,) = store._writer.execute("PRAGMA page_count").fetchone()
        store._writer.execute(f"PRAGMA max_page_count={pages}")
        big = [AppendEvents("r", 1, ["x" * 100_000])]
        for _ in range(2):
            with pytest.raises(StorageFailed, match="database or disk is full") as failed:
                await store.commit(big)
            assert "no transaction" not in str(failed.value)
        assert await store.count_events("r") == 1
        store._writer.execute("PRAGMA max_page_count=1073741823")
        await store.commit(big)
        assert await store.read_events("r", 0, 10) == [frame("r", 0), "x" * 100_000]


async def test_every_page_of_runs_walks_an_index_newest_first(path: Path) -> None:
    """Each filter of `list_runs`, after a cursor or not, seeks an index in the listing order:
    no scan of the table and no sort, but for a run id prefix (a range of the primary key, its
    matches sorted); counting by status reads the status index alone."""
    async with open_sqlite_store(path):
        pass
    connection = sqlite3.connect(path)
    cursor = RunCursor(5.0, "r")
    for status, workflow_id, before, index in [
        (None, None, None, "runs_newest"),
        (None, None, cursor, "runs_newest"),
        (RunStatus.ERROR, None, cursor, "runs_by_status_newest"),
        (None, "wf", cursor, "runs_by_workflow_newest"),
        (RunStatus.ERROR, "wf", None, "runs_by_workflow_newest"),
    ]:
        sql, params = sqlite_store._runs_query(status, workflow_id, None, before)
        plan = [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", (*params, 1))]
        assert len(plan) == 1 and f"USING INDEX {index}" in plan[0], (status, workflow_id, plan)
    sql, params = sqlite_store._runs_query(None, None, "ab", cursor)
    plan = [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", (*params, 1))]
    assert "SEARCH runs USING INDEX sqlite_autoindex_runs_1 (run_id>? AND run_id<?)" in plan
    counting = connection.execute("EXPLAIN QUERY PLAN SELECT status, COUNT(*) FROM runs GROUP BY status")
    assert [row[3] for row in counting] == ["SCAN runs USING COVERING INDEX runs_by_status_newest"]
    connection.close()


async def test_a_file_with_the_earlier_indexes_gets_the_listing_indexes(path: Path) -> None:
    async with open_sqlite_store(path) as store:
        await store.commit([create("r", 1.0)])
    connection = sqlite3.connect(path)
    for index in ("runs_newest", "runs_by_status_newest", "runs_by_workflow_newest"):
        connection.execute(f"DROP INDEX {index}")
    connection.execute("CREATE INDEX runs_by_status ON runs (status)")
    connection.execute("CREATE INDEX runs_by_created ON runs (created_at)")
    connection.commit()
    connection.close()
    async with open_sqlite_store(path) as store:
        assert [r.info.run_id for r in await store.list_runs(10, workflow_id="wf")] == ["r"]
    connection = sqlite3.connect(path)
    indexes = {name for (name,) in connection.execute(
        "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='runs' AND sql IS NOT NULL"
    )}
    connection.close()
    assert indexes == {"runs_newest", "runs_by_status_newest", "runs_by_workflow_newest"}
