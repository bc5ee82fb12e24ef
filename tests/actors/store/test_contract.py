"""The store contract (actors/store/base.py) that every store keeps, run against the memory store
and a real SQLite file; plus `parse_store_url` / `open_store` (actors/store/__init__.py).

The builders at the top are shared with test_memory.py and test_sqlite.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.events import RunInfo, RunStatus
from actors.store import (
    FIRST_EPOCH,
    AppendEvents,
    CheckWritable,
    ClaimRun,
    CreateRun,
    FinishRun,
    GraphRecord,
    RunCursor,
    RunRecord,
    SaveGraph,
    SharedStore,
    Store,
    StoreError,
    Write,
    WriteRefused,
    open_store,
    parse_store_url,
)
from actors.store.base import prefix_end
from actors.store.memory import open_memory_store
from actors.store.redis import open_redis_store
from actors.store.sqlite import open_sqlite_store
from tests.conftest import RedisServer

# --- builders ----------------------------------------------------------------------------------


def info(run_id: str, user_id: str | None = None, message: str = "") -> RunInfo:
    return RunInfo(run_id, "wf", "Workflow", f"session-{run_id}", user_id, message)


def record(
    run_id: str, created_at: float = 1.0, status: RunStatus = RunStatus.RUNNING
) -> RunRecord:
    return RunRecord(info(run_id), status, created_at)


def create(run_id: str, created_at: float = 1.0) -> CreateRun:
    return CreateRun(record(run_id, created_at))


def frame(run_id: str, index: int) -> str:
    """A deterministic frame (no wall-clock `created_at`), so it can be rebuilt to compare."""
    return json.dumps({"event": "StepProgress", "run_id": run_id, "event_index": index})


def append(run_id: str, index: int) -> AppendEvents:
    return AppendEvents(run_id, index, [frame(run_id, index)])


def appends(run_id: str, start: int, stop: int) -> list[AppendEvents]:
    """The events start..stop-1 as one write, as a run hands them over."""
    return [AppendEvents(run_id, start, [frame(run_id, i) for i in range(start, stop)])]


def indices(frames: list[str]) -> list[int]:
    return [json.loads(f)["event_index"] for f in frames]


Opener = Callable[[Path], AbstractAsyncContextManager[Store]]


def memory_opener(_: Path) -> AbstractAsyncContextManager[Store]:
    return open_memory_store()


def sqlite_opener(directory: Path) -> AbstractAsyncContextManager[Store]:
    return open_sqlite_store(directory / f"store-{uuid.uuid4().hex}.db")


@pytest.fixture(params=["memory", "sqlite", "redis"])
def opener(request: pytest.FixtureRequest) -> Opener:
    """Each store in turn; the Redis one on the session's redis-server, emptied for each use
    (hypothesis calls the opener many times in one test)."""
    if request.param == "memory":
        return memory_opener
    if request.param == "sqlite":
        return sqlite_opener
    server: RedisServer = request.getfixturevalue("redis_server")

    def redis_opener(_: Path) -> AbstractAsyncContextManager[Store]:
        server.flush()
        return open_redis_store(server.url)

    return redis_opener


@pytest.fixture
async def store(opener: Opener, tmp_path: Path) -> AsyncIterator[Store]:
    async with opener(tmp_path) as opened:
        yield opened


# --- runs --------------------------------------------------------------------------------------


async def test_created_run_reads_back(store: Store) -> None:
    rec = RunRecord(
        RunInfo("r1", "wf", "Workflow", "s1", "u1", "héllo 🙂"), RunStatus.RUNNING, 1700000000.25
    )
    await store.commit([CreateRun(rec)])
    got = await store.get_run("r1")
    assert got is not None
    assert attrs.evolve(got, node=None) == rec  # a shared store adds the node that owns it
    assert await store.get_run("missing") is None
    assert await store.count_events("r1") == 0
    assert await store.read_events("r1", 0, 10) == []


async def test_list_runs_newest_first_with_status_filter_and_limit(store: Store) -> None:
    await store.commit([create(f"r{i}", created_at=float(i)) for i in (3, 1, 4, 0, 2)])
    await store.commit([FinishRun("r1", RunStatus.COMPLETED, 10.0, 0)])
    await store.commit([FinishRun("r3", RunStatus.ERROR, 11.0, 0)])
    await store.commit([FinishRun("r4", RunStatus.COMPLETED, 12.0, 0)])

    def ids(records: list[RunRecord]) -> list[str]:
        return [r.info.run_id for r in records]

    assert ids(await store.list_runs(10)) == ["r4", "r3", "r2", "r1", "r0"]
    assert ids(await store.list_runs(2)) == ["r4", "r3"]
    assert ids(await store.list_runs(0)) == []
    assert ids(await store.list_runs(10, RunStatus.COMPLETED)) == ["r4", "r1"]
    assert ids(await store.list_runs(1, RunStatus.COMPLETED)) == ["r4"]
    assert ids(await store.list_runs(10, RunStatus.RUNNING)) == ["r2", "r0"]
    assert ids(await store.list_runs(10, RunStatus.CANCELLED)) == []


async def test_runs_of_equal_created_at_are_listed_by_run_id_descending(store: Store) -> None:
    await store.commit([create(run_id, created_at=2.0) for run_id in ("b", "a", "é", "B")])
    await store.commit([create("z", created_at=1.0), create("0", created_at=3.0)])
    listed = await store.list_runs(10)
    assert [r.info.run_id for r in listed] == ["0", "é", "b", "a", "B", "z"]
    after_b = await store.list_runs(10, before=RunCursor(2.0, "b"))
    assert [r.info.run_id for r in after_b] == ["a", "B", "z"]


async def test_count_runs_gives_every_status(store: Store) -> None:
    assert await store.count_runs() == dict.fromkeys(RunStatus, 0)
    await store.commit([create(f"r{i}", created_at=float(i)) for i in range(5)])
    await store.commit([FinishRun("r1", RunStatus.COMPLETED, 10.0, 0)])
    await store.commit([FinishRun("r2", RunStatus.COMPLETED, 10.0, 0),
                        FinishRun("r3", RunStatus.CANCELLED, 10.0, 0)])
    assert await store.count_runs() == {
        RunStatus.RUNNING: 2, RunStatus.COMPLETED: 2, RunStatus.ERROR: 0, RunStatus.CANCELLED: 1
    }


async def test_finish_run_updates_status_finished_at_and_event_count(store: Store) -> None:
    await store.commit([create("r", created_at=5.0), *appends("r", 0, 3)])
    await store.commit([*appends("r", 3, 4), FinishRun("r", RunStatus.CANCELLED, 9.5, 4)])
    got = await store.get_run("r")
    assert got is not None
    assert (got.status, got.finished_at, got.event_count) == (RunStatus.CANCELLED, 9.5, 4)
    assert got.info == info("r") and got.created_at == 5.0  # the rest is unchanged
    assert await store.count_events("r") == 4


async def test_unfinished_runs_are_the_running_ones(store: Store) -> None:
    if isinstance(store, SharedStore):
        pytest.skip("a shared store gives those of owners whose lease is gone (test_redis.py)")
    await store.commit([create("a", 1.0), create("b", 2.0), create("c", 3.0)])
    await store.commit([FinishRun("b", RunStatus.ERROR, 4.0, 0)])
    unfinished = await store.unfinished_runs()
    assert sorted(r.info.run_id for r in unfinished) == ["a", "c"]
    assert all(r.status is RunStatus.RUNNING for r in unfinished)
    await store.commit([FinishRun("a", RunStatus.COMPLETED, 5.0, 0)])
    await store.commit([FinishRun("c", RunStatus.CANCELLED, 5.0, 0)])
    assert await store.unfinished_runs() == []


# --- events ------------------------------------------------------------------------------------


async def test_read_events_pages_in_index_order(store: Store) -> None:
    await store.commit([create("r"), *appends("r", 0, 4)])
    await store.commit(appends("r", 4, 10))
    assert await store.read_events("r", 0, 100) == [frame("r", i) for i in range(10)]
    assert indices(await store.read_events("r", 0, 3)) == [0, 1, 2]
    assert indices(await store.read_events("r", 3, 3)) == [3, 4, 5]
    assert indices(await store.read_events("r", 9, 3)) == [9]
    assert await store.read_events("r", 10, 3) == []
    assert await store.read_events("r", 50, 3) == []
    assert await store.read_events("r", 2, 0) == []
    assert await store.count_events("r") == 10
    assert await store.read_events("other", 0, 10) == []
    assert await store.count_events("other") == 0


async def test_events_of_runs_do_not_mix(store: Store) -> None:
    await store.commit([create("a"), create("b", 2.0)])
    await store.commit([append("a", 0), append("b", 0), append("a", 1)])
    assert await store.read_events("a", 0, 10) == [frame("a", 0), frame("a", 1)]
    assert await store.read_events("b", 0, 10) == [frame("b", 0)]


async def test_frames_are_stored_verbatim(store: Store) -> None:
    text = '{"event":"StepProgress","content":"é🙂 \\"quoted\\"\\n","event_index":0}'
    await store.commit([create("r"), AppendEvents("r", 0, [text])])
    assert await store.read_events("r", 0, 1) == [text]


# --- failures ----------------------------------------------------------------------------------


async def test_a_duplicate_event_index_is_refused_and_changes_nothing(store: Store) -> None:
    """A commit is all or none: a duplicate (run_id, idx) fails the whole commit."""
    await store.commit([create("r"), *appends("r", 0, 3)])
    with pytest.raises(StoreError):
        await store.commit([append("r", 3), AppendEvents("r", 1, ["duplicate"])])
    assert await store.read_events("r", 0, 10) == [frame("r", i) for i in range(3)]
    await store.commit([append("r", 3)])  # the store is still usable
    assert await store.count_events("r") == 4


async def test_an_append_of_several_events_overlapping_the_history_is_refused_whole(
    store: Store,
) -> None:
    await store.commit([create("r"), *appends("r", 0, 3)])
    with pytest.raises(StoreError):
        await store.commit(appends("r", 2, 5))
    assert await store.read_events("r", 0, 10) == [frame("r", i) for i in range(3)]
    await store.commit(appends("r", 3, 5))
    assert await store.read_events("r", 0, 10) == [frame("r", i) for i in range(5)]


async def test_a_duplicate_run_is_refused(store: Store) -> None:
    await store.commit([create("r", 1.0)])
    with pytest.raises(StoreError):
        await store.commit([create("r", 2.0)])
    got = await store.get_run("r")
    assert got is not None and got.created_at == 1.0


async def test_a_bad_commit_fails_only_its_own_caller(store: Store) -> None:
    """Concurrent commits: the one of another event at an index taken gets StoreError, all
    others land."""
    runs = [f"r{i}" for i in range(8)]
    await store.commit([create(r, float(i)) for i, r in enumerate(runs)])
    await store.commit([append("r0", 0)])
    results: dict[str, BaseException | None] = {}

    async def commit(run_id: str, index: int, text: str = "") -> None:
        try:
            await store.commit([AppendEvents(run_id, index, [text or frame(run_id, index)])])
        except StoreError as error:
            results[f"{run_id}/{index}"] = error
        else:
            results[f"{run_id}/{index}"] = None

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(commit, "r0", 0, "another event")
            for run_id in runs[1:]:
                nursery.start_soon(commit, run_id, 0)
    assert isinstance(results.pop("r0/0"), StoreError)
    assert results == {f"{r}/0": None for r in runs[1:]}
    for run_id in runs:
        assert await store.read_events(run_id, 0, 10) == [frame(run_id, 0)]


async def test_commits_after_close_are_refused(opener: Opener, tmp_path: Path) -> None:
    async with opener(tmp_path) as store:
        await store.commit([create("r")])
    with pytest.raises(StoreError):
        await store.commit([append("r", 0)])


# --- the fence: one writer per run, by epoch and next index --------------------------------------


async def test_an_append_that_leaves_a_gap_is_refused(store: Store) -> None:
    await store.commit([create("r"), *appends("r", 0, 2)])
    with pytest.raises(WriteRefused, match="event 5 of run r is not next \\(2\\)"):
        await store.commit(appends("r", 5, 7))
    assert await store.count_events("r") == 2
    assert await store.read_events("r", 0, 10) == [frame("r", i) for i in range(2)]


async def test_after_a_claim_the_older_epoch_can_neither_append_nor_finish(store: Store) -> None:
    await store.commit([create("r"), *appends("r", 0, 2)])
    await store.commit([ClaimRun("r", 2)])
    with pytest.raises(WriteRefused, match="written by epoch 2, not by epoch 1"):
        await store.commit(appends("r", 2, 4))
    with pytest.raises(WriteRefused, match="written by epoch 2, not by epoch 1"):
        await store.commit([FinishRun("r", RunStatus.COMPLETED, 2.0, 2)])
    await store.commit(
        [AppendEvents("r", 2, [frame("r", 2)], epoch=2), FinishRun("r", RunStatus.ERROR, 3.0, 3, epoch=2)]
    )
    got = await store.get_run("r")
    assert got is not None
    assert (got.status, got.event_count, got.epoch) == (RunStatus.ERROR, 3, 2)
    assert await store.read_events("r", 0, 10) == [frame("r", i) for i in range(3)]


async def test_of_two_claims_of_the_same_epoch_one_wins(store: Store) -> None:
    await store.commit([create("r")])
    await store.commit([ClaimRun("r", 2)])
    with pytest.raises(WriteRefused, match="cannot be claimed for epoch 2"):
        await store.commit([ClaimRun("r", 2)])
    with pytest.raises(WriteRefused, match="cannot be claimed for epoch 4"):
        await store.commit([ClaimRun("r", 4)])
    got = await store.get_run("r")
    assert got is not None and got.epoch == 2


async def test_a_claim_and_the_claimers_writes_are_one_commit(store: Store) -> None:
    """A refused write after the claim refuses the claim too: the run's writer is unchanged."""
    await store.commit([create("r"), *appends("r", 0, 1)])
    with pytest.raises(WriteRefused):
        await store.commit([ClaimRun("r", 2), AppendEvents("r", 0, ["again"], epoch=2)])
    got = await store.get_run("r")
    assert got is not None and (got.epoch, got.event_count) == (1, 1)


async def test_a_finished_run_takes_nothing_more(store: Store) -> None:
    await store.commit([create("r"), *appends("r", 0, 1), FinishRun("r", RunStatus.COMPLETED, 2.0, 1)])
    for write in (append("r", 1), FinishRun("r", RunStatus.ERROR, 3.0, 1), ClaimRun("r", 2)):
        with pytest.raises(WriteRefused, match="already finished"):
            await store.commit([write])
    assert await store.count_events("r") == 1


async def test_a_finish_must_follow_the_last_event(store: Store) -> None:
    await store.commit([create("r"), *appends("r", 0, 3)])
    with pytest.raises(WriteRefused, match="cannot finish after 2 events: it has 3"):
        await store.commit([FinishRun("r", RunStatus.COMPLETED, 2.0, 2)])
    with pytest.raises(WriteRefused, match="run ghost does not exist"):
        await store.commit([append("ghost", 0)])


fence_steps = st.lists(
    st.one_of(
        # an append: (offset from the true next index, epoch offset from the writer's, size)
        st.tuples(st.just("append"), st.integers(-2, 2), st.integers(-1, 1), st.integers(1, 3)),
        st.tuples(st.just("claim"), st.integers(-1, 2)),
        st.tuples(st.just("finish"), st.integers(-1, 1), st.integers(-1, 1)),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=fence_steps)
async def test_the_store_takes_exactly_the_writes_that_fit_a_model_of_the_fence(
    opener: Opener, tmp_path: Path, steps: list[tuple[Any, ...]]
) -> None:
    """Random appends, claims and finishes, right or off by a little in index and epoch: the
    store takes a write exactly when the model says it fits, and its history stays 0..n-1. A
    shared store also takes an identical retry of the run's last events, and changes nothing."""
    async with opener(tmp_path) as store:
        retries = isinstance(store, SharedStore)
        await store.commit([create("r")])
        count, epoch, finished = 0, FIRST_EPOCH, False
        for step in steps:
            write: Write
            if step[0] == "append":
                _, index_off, epoch_off, size = step
                first = count + index_off
                write = AppendEvents(
                    "r", first, [frame("r", i) for i in range(first, first + size)], epoch=epoch + epoch_off
                )
                retry = retries and epoch_off == 0 and first >= 0 and first + size == count
                fits = (index_off == 0 or retry) and epoch_off == 0
            elif step[0] == "claim":
                write = ClaimRun("r", epoch + 1 + step[1])
                fits = step[1] == 0
            else:
                _, count_off, epoch_off = step
                write = FinishRun("r", RunStatus.COMPLETED, 1.0, count + count_off, epoch=epoch + epoch_off)
                fits = count_off == 0 and epoch_off == 0
            fits = fits and not finished
            try:
                await store.commit([write])
            except WriteRefused:
                assert not fits, write
                continue
            assert fits, write
            if isinstance(write, AppendEvents):
                count = max(count, write.first + len(write.frames))
            elif isinstance(write, ClaimRun):
                epoch = write.epoch
            else:
                finished = True
        got = await store.get_run("r")
        assert got is not None
        assert (got.event_count, got.epoch, got.status.finished) == (count, epoch, finished)
        assert await store.read_events("r", 0, 100) == [frame("r", i) for i in range(count)]


# --- graphs ------------------------------------------------------------------------------------


def graph(graph_id: str, name: str = "review", created_at: float = 1.0) -> GraphRecord:
    definition = json.dumps({"name": name, "nodes": {"a": {"function": "f", "params": {}}}})
    return GraphRecord(graph_id, name, definition, created_at)


async def test_a_saved_graph_reads_back(store: Store) -> None:
    saved = GraphRecord("g1", "revue é🙂", '{"name":"revue é🙂","nodes":{}}', 1700000000.5)
    await store.commit([SaveGraph(saved)])
    assert await store.get_graph("g1") == saved
    assert await store.get_graph("missing") is None


async def test_graphs_and_runs_commit_together(store: Store) -> None:
    await store.commit([create("r"), append("r", 0), SaveGraph(graph("g"))])
    assert await store.get_graph("g") == graph("g")
    assert await store.read_events("r", 0, 10) == [frame("r", 0)]


async def test_saving_a_graph_id_twice_is_refused_and_changes_nothing(store: Store) -> None:
    """The refused commit is all or none: its run, its events and its other graph are not
    applied either, the first graph stays as it was, and the store is still usable."""
    await store.commit([SaveGraph(graph("g", "first"))])
    with pytest.raises(StoreError):
        await store.commit(
            [
                create("r"),
                append("r", 0),
                SaveGraph(graph("other")),
                SaveGraph(graph("g", "second", 2.0)),
            ]
        )
    assert await store.get_graph("g") == graph("g", "first")
    assert await store.get_graph("other") is None
    assert await store.get_run("r") is None
    assert await store.count_events("r") == 0
    await store.commit([SaveGraph(graph("other"))])
    assert await store.get_graph("other") == graph("other")


async def test_the_same_graph_id_twice_in_one_commit_is_refused(store: Store) -> None:
    with pytest.raises(StoreError):
        await store.commit([SaveGraph(graph("g", "one")), SaveGraph(graph("g", "two"))])
    assert await store.get_graph("g") is None


async def test_concurrent_saves_of_one_graph_id_keep_exactly_one(store: Store) -> None:
    """Concurrent commits: one save of `g` lands, the other fails alone, and an unrelated graph
    saved meanwhile lands too."""
    outcomes: dict[str, bool] = {}

    async def save(record: GraphRecord) -> None:
        try:
            await store.commit([SaveGraph(record)])
        except StoreError:
            outcomes[record.name] = False
        else:
            outcomes[record.name] = True

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for name in ("one", "two"):
                nursery.start_soon(save, graph("g", name))
            nursery.start_soon(save, graph("h", "other"))
    assert outcomes.pop("other") is True
    assert sorted(outcomes.values()) == [False, True]
    winner = next(name for name, landed in outcomes.items() if landed)
    assert await store.get_graph("g") == graph("g", winner)
    assert await store.get_graph("h") == graph("h", "other")


async def test_a_saved_graph_survives_reopening_the_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "graphs.db"
    async with open_sqlite_store(path) as store:
        await store.commit([SaveGraph(graph("g", created_at=12.25))])
    async with open_sqlite_store(path) as store:
        assert await store.get_graph("g") == graph("g", created_at=12.25)
        with pytest.raises(StoreError):
            await store.commit([SaveGraph(graph("g", "again"))])
        assert await store.get_graph("g") == graph("g", created_at=12.25)


# --- property: any interleaving reads back gap-free --------------------------------------------


run_plans = st.lists(
    # per run: the sizes of its successive commits, and checkpoints taken before each commit
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=6), st.integers(min_value=0, max_value=3)),
        min_size=1,
        max_size=6,
    ),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plans=run_plans, page=st.integers(min_value=1, max_value=7))
async def test_interleaved_appends_read_back_in_order_without_gaps(
    opener: Opener, tmp_path: Path, plans: list[list[tuple[int, int]]], page: int
) -> None:
    """Each run commits its events in order (as a run actor does); the runs interleave their
    commits arbitrarily. Reading back, page by page, gives each run's frames 0..n-1."""
    async with opener(tmp_path) as store:

        async def run(run_id: str, plan: list[tuple[int, int]]) -> None:
            await store.commit([create(run_id)])
            next_index = 0
            for size, pauses in plan:
                for _ in range(pauses):
                    await trio.lowlevel.checkpoint()
                await store.commit(appends(run_id, next_index, next_index + size))
                next_index += size

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for n, plan in enumerate(plans):
                    nursery.start_soon(run, f"run{n}", plan)

        for n, plan in enumerate(plans):
            run_id, total = f"run{n}", sum(size for size, _ in plan)
            frames: list[str] = []
            while batch := await store.read_events(run_id, len(frames), page):
                assert len(batch) <= page
                frames.extend(batch)
            assert indices(frames) == list(range(total))
            assert frames == [frame(run_id, i) for i in range(total)]
            assert await store.count_events(run_id) == total


# --- parse_store_url / open_store --------------------------------------------------------------


def test_parse_store_url_accepts_memory_sqlite_path_and_redis_url() -> None:
    assert parse_store_url("redis://127.0.0.1:6379/0") == ("redis", "redis://127.0.0.1:6379/0")
    assert parse_store_url("rediss://cache.example:6380/2") == ("redis", "rediss://cache.example:6380/2")
    assert parse_store_url("memory") == ("memory", "")
    assert parse_store_url("sqlite:./runcast.db") == ("sqlite", "./runcast.db")
    assert parse_store_url("sqlite:/tmp/a:b.db") == ("sqlite", "/tmp/a:b.db")


@pytest.mark.parametrize(
    "url", ["", "sqlite", "sqlite:", "redis:", "redis://", "Memory", "memory:", "postgres:db"]
)
def test_parse_store_url_rejects_others_naming_what_is_accepted(url: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_store_url(url)
    message = str(raised.value)
    assert "'memory'" in message and "'sqlite:PATH'" in message and "redis://HOST" in message
    assert repr(url) in message


async def test_open_store_opens_the_named_store(tmp_path: Path) -> None:
    path = tmp_path / "opened.db"
    async with open_store(f"sqlite:{path}") as store:
        await store.commit([create("r"), append("r", 0)])
    assert path.exists()
    async with open_store(f"sqlite:{path}") as store:
        assert await store.read_events("r", 0, 10) == [frame("r", 0)]
    async with open_store("memory") as store:
        assert await store.get_run("r") is None
        await store.commit([create("r")])
        assert await store.get_run("r") == record("r")
    with pytest.raises(ValueError, match="sqlite:PATH"):
        async with open_store("nope"):
            pass


# --- property: pages of runs -------------------------------------------------------------------


RUN_ID_CHARACTERS = "abAé9-\U0001f642"  # lower and upper case, accented, an emoji (4 UTF-8 bytes)
WORKFLOWS = ["wf-a", "wf-b", "wf-c"]
listed_runs = st.lists(
    st.tuples(
        st.text(RUN_ID_CHARACTERS, min_size=1, max_size=4),  # run id
        st.integers(0, 3),  # created_at: few values, so that many runs tie
        st.sampled_from(WORKFLOWS),
        st.sampled_from(RunStatus),
    ),
    max_size=30,
    unique_by=lambda run: run[0],
)
run_filters = st.fixed_dictionaries({
    "status": st.none() | st.sampled_from(RunStatus),
    "workflow_id": st.none() | st.sampled_from(WORKFLOWS),
    "run_id_prefix": st.none() | st.text(RUN_ID_CHARACTERS, min_size=1, max_size=2),
})


async def add_runs(store: Store, runs: list[tuple[str, float, str, RunStatus]]) -> None:
    """Create the runs (every store creates a run RUNNING), then finish the others."""
    if not runs:
        return
    await store.commit([
        CreateRun(RunRecord(RunInfo(run_id, workflow, workflow, "s", None, ""),
                            RunStatus.RUNNING, created_at))
        for run_id, created_at, workflow, _ in runs
    ])
    await store.commit([
        FinishRun(run_id, status, 100.0, 0)
        for run_id, _, _, status in runs if status is not RunStatus.RUNNING
    ] or [CheckWritable(0.0)])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(runs=listed_runs, filters=run_filters, limits=st.lists(st.integers(1, 7), min_size=1),
       created_between=st.lists(st.text(RUN_ID_CHARACTERS, min_size=5, max_size=6), max_size=3,
                                unique=True))
async def test_pages_give_the_filtered_runs_newest_first_each_once(
    opener: Opener,
    tmp_path: Path,
    runs: list[tuple[str, int, str, RunStatus]],
    filters: dict[str, Any],
    limits: list[int],
    created_between: list[str],
) -> None:
    """Random runs (ties of created_at, run ids that sort differently by bytes, case or locale)
    paged with random limits and filters: the pages together are exactly the runs the filters
    keep, in the order (created_at, run_id) descending, each once; a full page is followed by
    the rest through its last run as the cursor, and runs created between pages (newer, as a
    clock makes them) never make one repeat or go missing."""
    async with opener(tmp_path) as store:
        await add_runs(store, [(r, float(c), w, s) for r, c, w, s in runs])
        expected = [
            run_id
            for run_id, created_at, workflow, status in sorted(
                runs, key=lambda run: (run[1], run[0]), reverse=True
            )
            if filters["status"] in (None, status)
            and filters["workflow_id"] in (None, workflow)
            and run_id.startswith(filters["run_id_prefix"] or "")
        ]
        listed: list[str] = []
        cursor: RunCursor | None = None
        newer = iter(created_between)
        for page_number in range(len(runs) + 2):
            limit = limits[page_number % len(limits)]
            page = await store.list_runs(limit, before=cursor, **filters)
            assert len(page) <= limit
            listed += [r.info.run_id for r in page]
            if len(page) < limit:
                break
            cursor = RunCursor.of(page[-1])
            new_id = next(newer, None)
            if new_id is not None:  # a run created now: newer than every listed one
                await add_runs(store, [(new_id, 10.0 + page_number, WORKFLOWS[0],
                                        RunStatus.RUNNING)])
        assert listed == expected
        if cursor is None:  # one page said it all: the same query without a cursor agrees
            assert [r.info.run_id for r in await store.list_runs(1000, **filters)] == expected


@pytest.mark.parametrize(
    ("prefix", "end"),
    [("ab", "ac"), ("a\U0010ffff", "b"), ("\U0010ffff\U0010ffff", None), ("\ud7ff", "\ue000"),
     ("é", "ê")],
)
def test_the_end_of_a_run_id_prefix_range(prefix: str, end: str | None) -> None:
    assert prefix_end(prefix) == end
