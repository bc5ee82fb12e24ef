"""actors/store/redis.py, beyond the shared contract (test_contract.py), on a real redis-server:
the layout other nodes will read (one stream entry `<index>-1` per event, the run's hash), exact
timestamps, and a Redis that cannot be reached is a StorageFailed naming it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import coredis
import pytest
import trio
from coredis.retry import NoRetryPolicy

from actors.events import RunInfo, RunStatus
from actors.feed import Feed
from actors.store import (
    AppendEvents,
    CheckWritable,
    ClaimRun,
    CreateRun,
    FinishRun,
    RunCursor,
    RunRecord,
    StorageFailed,
    Write,
    WriteRefused,
)
from actors.store.base import HistoryGone, LeaseLost, OwnershipLost
from actors.store.redis import INDEXED, LIBRARY, PREFIX_MATCHES, RedisStore, open_redis_store
from actors.store.redis_lease import NodeLease
from tests.actors.store.test_contract import append, appends, create, frame, record
from tests.actors.store.test_redis_channels import next_notice, node


async def test_events_are_stream_entries_with_their_index_and_the_run_a_hash(redis_url: str) -> None:
    async with open_redis_store(redis_url) as store:
        await store.commit([create("r", created_at=1796341975.707096), *appends("r", 0, 3)])
        await store.commit([FinishRun("r", RunStatus.COMPLETED, 1796341999.123456, 3)])
    async with coredis.Redis.from_url(redis_url, decode_responses=True) as redis:
        entries = await redis.xrange("rc:ev:r")
        run = await redis.hgetall("rc:run:r")
        assert await redis.zrange("rc:runs:COMPLETED", 0, -1) == ("r",)
        assert await redis.zrange("rc:runs:RUNNING", 0, -1) == ()
    assert [entry.identifier for entry in entries] == ["0-1", "1-1", "2-1"]
    assert [entry.field_values["f"] for entry in entries] == [frame("r", i) for i in range(3)]
    assert (run["status"], run["event_count"], run["epoch"]) == ("COMPLETED", "3", "1")
    async with open_redis_store(redis_url) as store:  # another connection reads it all back
        got = await store.get_run("r")
        assert got is not None
        assert got.created_at == 1796341975.707096 and got.finished_at == 1796341999.123456
        assert got.info == record("r").info and got.event_count == 3


async def test_a_redis_that_cannot_be_reached_is_a_storage_failure_naming_it() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the probe is closed
    url = f"redis://127.0.0.1:{port}/0"
    with pytest.raises(StorageFailed, match=f"Redis, {url}"):
        async with open_redis_store(url):
            pass


# --- ownership in the fence: several nodes on one Redis ----------------------------------------


@asynccontextmanager
async def admin(url: str) -> AsyncIterator[coredis.Redis[str]]:
    """A plain client, with the store's functions loaded."""
    async with coredis.Redis.from_url(url, decode_responses=True, retry_policy=NoRetryPolicy()) as client:
        await client.function_load(LIBRARY, replace=True)
        yield client


@asynccontextmanager
async def paused_node(url: str, node_id: str) -> AsyncIterator[RedisStore]:
    """The store of a node that took its lease and then stopped renewing it (paused, or cut off
    from Redis): its lease is never kept, and goes when `rc:node:<node_id>` does."""
    async with admin(url) as client:
        lease = NodeLease(client, node(node_id))
        await lease.acquire()
        yield RedisStore(client, url, lease, None)  # its channels never run


async def take_all(feed: Feed, count: int) -> tuple[int, list[str]]:
    """The next `count` events of `feed`, batches joined (checked contiguous)."""
    first: int | None = None
    frames: list[str] = []
    with trio.fail_after(5):
        while len(frames) < count:
            at, got = await feed.take(100)
            assert got, "the feed closed"
            first = at if first is None else first
            assert at == first + len(frames)
            frames += got
    assert first is not None
    return first, frames


async def test_a_node_whose_lease_is_gone_can_neither_create_nor_write_its_runs(
    redis_url: str,
) -> None:
    async with paused_node(redis_url, "p") as paused, admin(redis_url) as client:
        await paused.commit([create("r"), *appends("r", 0, 2)])
        await paused.commit([CheckWritable(1.0)])
        await client.delete(["rc:node:p"])  # its lease lapsed
        with pytest.raises(OwnershipLost, match="node p holds no live lease"):
            await paused.commit([create("new")])
        with pytest.raises(OwnershipLost, match="node p holds no live lease"):
            await paused.commit([CheckWritable(2.0)])  # it cannot write: not writable
        with pytest.raises(OwnershipLost, match="node p no longer holds run r"):
            await paused.commit([append("r", 2)])
        with pytest.raises(OwnershipLost, match="node p no longer holds run r"):
            await paused.commit([FinishRun("r", RunStatus.COMPLETED, 2.0, 2)])
        # another incarnation of the node id took the lease: still not the paused node's
        await client.set("rc:node:p", "p#another", px=5000)
        with pytest.raises(OwnershipLost):
            await paused.commit([append("r", 2)])
        with pytest.raises(OwnershipLost, match="holds no live lease"):
            await paused.commit([create("new")])
        assert await paused.get_run("new") is None
        got = await paused.get_run("r")
        assert got is not None and (got.status, got.event_count) == (RunStatus.RUNNING, 2)
        assert await client.xlen("rc:ev:r") == 2
        assert await client.exists(["rc:ev:new", "rc:run:new"]) == 0


async def test_only_the_owner_writes_a_run_while_its_lease_lives(redis_url: str) -> None:
    async with (
        open_redis_store(redis_url, node("n1")) as one,
        open_redis_store(redis_url, node("n2")) as two,
    ):
        await one.commit([create("r"), *appends("r", 0, 2)])
        with pytest.raises(OwnershipLost, match="node n2 no longer holds run r"):
            await two.commit([append("r", 2)])  # the right index and epoch, not the owner
        with pytest.raises(OwnershipLost):
            await two.commit([FinishRun("r", RunStatus.COMPLETED, 2.0, 2)])
        with pytest.raises(OwnershipLost):  # all or none: its own run is not created either
            await two.commit([create("mine"), append("r", 2)])
        assert await two.get_run("mine") is None
        await one.commit([append("r", 2), FinishRun("r", RunStatus.COMPLETED, 2.0, 3)])
        assert await two.read_events("r", 0, 10) == [frame("r", i) for i in range(3)]


async def test_a_claim_is_refused_while_the_owner_lives_and_taken_once_its_lease_is_gone(
    redis_url: str,
) -> None:
    async with (
        open_redis_store(redis_url, node("n1")) as one,
        open_redis_store(redis_url, node("n2")) as two,
        admin(redis_url) as client,
    ):
        await one.commit([create("r"), *appends("r", 0, 2)])
        with pytest.raises(WriteRefused, match="run r is held by a live node") as refused:
            await two.commit([ClaimRun("r", 2), AppendEvents("r", 2, ["taken"], epoch=2)])
        assert not isinstance(refused.value, OwnershipLost)
        got = await two.get_run("r")
        assert got is not None and (got.epoch, got.event_count) == (1, 2)
        await one.commit([append("r", 2)])  # the owner is undisturbed

        await client.delete(["rc:node:n1"])  # n1 lost its lease (it takes a new one)
        with trio.fail_after(5):
            assert isinstance(await next_notice(one), LeaseLost)
        await two.commit([ClaimRun("r", 2), AppendEvents("r", 3, ["taken"], epoch=2)])
        with pytest.raises(OwnershipLost):  # under its new lease n1 does not hold r
            await one.commit([append("r", 4)])
        with pytest.raises(WriteRefused, match="held by a live node"):  # nor can take it back
            await one.commit([ClaimRun("r", 3)])
        await two.commit([FinishRun("r", RunStatus.ERROR, 2.0, 4, epoch=2)])
        got = await two.get_run("r")
        assert got is not None and (got.status, got.epoch, got.event_count) == (RunStatus.ERROR, 2, 4)
        assert await two.read_events("r", 0, 10) == [*(frame("r", i) for i in range(3)), "taken"]


async def test_of_two_nodes_claiming_a_dead_owners_run_one_wins(redis_url: str) -> None:
    async with open_redis_store(redis_url, node("n1")) as one:
        await one.commit([create("r"), *appends("r", 0, 2)])
    async with (
        open_redis_store(redis_url, node("n2")) as two,
        open_redis_store(redis_url, node("n3")) as three,
    ):
        outcomes: dict[str, BaseException | None] = {}

        async def claim(store: RedisStore) -> None:
            try:
                await store.commit([
                    ClaimRun("r", 2),
                    AppendEvents("r", 2, [f"closed by {store.node_id}"], epoch=2),
                    FinishRun("r", RunStatus.ERROR, 2.0, 3, epoch=2),
                ])
                outcomes[store.node_id] = None
            except WriteRefused as refused:
                outcomes[store.node_id] = refused

        async with trio.open_nursery() as nursery:
            nursery.start_soon(claim, two)
            nursery.start_soon(claim, three)
        winners = [node_id for node_id, outcome in outcomes.items() if outcome is None]
        assert len(outcomes) == 2 and len(winners) == 1
        events = await two.read_events("r", 0, 10)
        assert events == [frame("r", 0), frame("r", 1), f"closed by {winners[0]}"]
        got = await two.get_run("r")
        assert got is not None and (got.status, got.epoch, got.event_count) == (RunStatus.ERROR, 2, 3)


async def test_unfinished_runs_are_the_running_runs_of_dead_owners(redis_url: str) -> None:
    async with (
        open_redis_store(redis_url, node("n2")) as two,
        open_redis_store(redis_url, node("n3")) as three,
        admin(redis_url) as client,
    ):
        async with open_redis_store(redis_url, node("n1")) as one:
            await one.commit([create("a", 1.0), create("c", 3.0), create("d", 4.0)])
            await one.commit([FinishRun("c", RunStatus.COMPLETED, 5.0, 0)])
            await two.commit([create("b", 2.0)])
            assert await three.unfinished_runs() == []  # every owner lives
            dead = one.lease.token
        ids = sorted(record.info.run_id for record in await three.unfinished_runs())
        assert ids == ["a", "d"]  # not b (n2 lives) nor c (finished)
        assert [r.status for r in await two.unfinished_runs()] == [RunStatus.RUNNING] * 2

        await three.commit([ClaimRun("a", 2), FinishRun("a", RunStatus.ERROR, 6.0, 0, epoch=2)])
        await two.commit([ClaimRun("d", 2)])  # taken over, still running: n2's now
        assert await three.unfinished_runs() == []
        assert dead not in await client.smembers("rc:owners")  # an empty dead owner is forgotten

        await client.delete(["rc:node:n2"])  # n2 lost its lease: its runs are orphans
        with trio.fail_after(5):
            assert isinstance(await next_notice(two), LeaseLost)
        ids = sorted(record.info.run_id for record in await three.unfinished_runs())
        assert ids == ["b", "d"]


async def test_an_identical_retry_of_the_last_events_is_taken_and_changes_nothing(
    redis_url: str,
) -> None:
    """A commit reported failed may have landed: sent again unchanged, it is accepted without
    a second stream entry or a second message; anything else at those indices is refused."""
    async with open_redis_store(redis_url, node("n1")) as store, admin(redis_url) as client:
        await store.commit([create("r"), *appends("r", 0, 3)])
        feed = await store.watch("r", 100)
        await store.commit(appends("r", 0, 3))  # the retry
        await store.commit([AppendEvents("r", 2, [frame("r", 2)])])  # of its last event alone
        assert await client.xlen("rc:ev:r") == 3
        assert await store.count_events("r") == 3
        with pytest.raises(WriteRefused, match="event 2 of run r is not next"):
            await store.commit([AppendEvents("r", 2, ["a different event 2"])])
        with pytest.raises(WriteRefused):  # not the last events: events 0-1 of 0-2
            await store.commit([AppendEvents("r", 0, [frame("r", 0), frame("r", 1)])])
        with pytest.raises(WriteRefused):  # the last events and one more that is not there
            await store.commit([AppendEvents("r", 2, [frame("r", 2), frame("r", 3)])])
        with pytest.raises(WriteRefused):  # right frames, an older epoch
            await store.commit([AppendEvents("r", 0, [frame("r", i) for i in range(3)], epoch=0)])
        assert await store.read_events("r", 0, 10) == [frame("r", i) for i in range(3)]

        await store.commit([append("r", 3)])
        # nothing was published before the new event: the feed starts with it
        assert await take_all(feed, 1) == (3, [frame("r", 3)])
        assert await client.xlen("rc:ev:r") == 4


async def test_a_refused_commit_publishes_nothing(redis_url: str) -> None:
    async with (
        open_redis_store(redis_url, node("n1")) as one,
        open_redis_store(redis_url, node("n2")) as two,
    ):
        await one.commit([create("r")])
        feed = await two.watch("r", 100)
        refused: list[list[Write]] = [
            [append("r", 0), AppendEvents("r", 5, ["a gap"])],  # the second write does not fit
            [append("r", 0), create("r")],  # the run exists
            [append("r", 0), FinishRun("r", RunStatus.COMPLETED, 2.0, 0)],  # count is 1, not 0
            [FinishRun("r", RunStatus.COMPLETED, 2.0, 7)],  # an end without events
            [append("r", 0), ClaimRun("r", 3)],  # not the next epoch
        ]
        for writes in refused:
            with pytest.raises(WriteRefused):
                await one.commit(writes)
        with pytest.raises(OwnershipLost):  # the fence's ownership check, from another node
            await two.commit([append("r", 0), FinishRun("r", RunStatus.COMPLETED, 2.0, 1)])
        await one.commit([AppendEvents("r", 0, ["the first that fits"])])
        assert await take_all(feed, 1) == (0, ["the first that fits"])
        assert not feed.closed


async def test_with_retention_a_finished_history_expires_and_its_run_stays(redis_url: str) -> None:
    async with (
        open_redis_store(redis_url, node("n1"), retention=0.3) as store,
        admin(redis_url) as client,
    ):
        await store.commit([create("done", 1.0), *appends("done", 0, 3)])
        await store.commit([FinishRun("done", RunStatus.COMPLETED, 2.0, 3)])
        await store.commit([create("running", 3.0), *appends("running", 0, 2)])
        assert await store.read_events("done", 0, 10) == [frame("done", i) for i in range(3)]
        assert 0 < await client.pttl("rc:ev:done") <= 300
        assert await client.pttl("rc:ev:running") == -1
        await trio.sleep(0.5)

        with pytest.raises(HistoryGone) as gone:
            await store.read_events("done", 0, 10)
        assert gone.value.run_id == "done" and "--retention" in str(gone.value)
        with pytest.raises(HistoryGone):
            await store.read_events("done", 2, 10)
        assert await store.read_events("done", 3, 10) == []  # nothing after its end: no error
        got = await store.get_run("done")
        assert got is not None
        assert (got.status, got.event_count, got.finished_at) == (RunStatus.COMPLETED, 3, 2.0)
        assert await store.count_events("done") == 3
        assert [r.info.run_id for r in await store.list_runs(10)] == ["running", "done"]
        assert await client.pttl("rc:run:done") == -1
        assert await store.read_events("running", 0, 10) == [frame("running", i) for i in range(2)]


async def test_without_retention_a_finished_history_is_kept(redis_url: str) -> None:
    async with open_redis_store(redis_url, node("n1")) as store, admin(redis_url) as client:
        await store.commit([create("done"), *appends("done", 0, 2)])
        await store.commit([FinishRun("done", RunStatus.COMPLETED, 2.0, 2)])
        assert await client.pttl("rc:ev:done") == -1


# -- listing: the workflow and run id indexes ------------------------------------------------------


def run_of(run_id: str, workflow_id: str, created_at: float) -> CreateRun:
    return CreateRun(RunRecord(RunInfo(run_id, workflow_id, workflow_id, "s", None, ""),
                               RunStatus.RUNNING, created_at))


async def test_runs_of_an_earlier_version_are_indexed_when_a_store_opens(redis_url: str) -> None:
    """A Redis written before `rc:wf:*` and `rc:ids` existed: the first store to open puts every
    run in them, and the filters find them."""
    async with open_redis_store(redis_url) as store:
        await store.commit([run_of(f"run-{i:04}", f"wf-{i % 3}", float(i)) for i in range(2500)])
        await store.commit([FinishRun("run-0003", RunStatus.ERROR, 1.0, 0)])
    async with admin(redis_url) as client:
        await client.delete(["rc:ids", "rc:wf:wf-0", "rc:wf:wf-1", "rc:wf:wf-2", INDEXED])
    async with open_redis_store(redis_url) as store:
        page = await store.list_runs(3, workflow_id="wf-0", before=RunCursor(9.0, "run-0009"))
        assert [r.info.run_id for r in page] == ["run-0006", "run-0003", "run-0000"]
        errors = await store.list_runs(5, RunStatus.ERROR, workflow_id="wf-0")
        assert [r.info.run_id for r in errors] == ["run-0003"]
        assert [r.info.run_id for r in await store.list_runs(5, run_id_prefix="run-000")] == [
            f"run-000{i}" for i in range(9, 4, -1)
        ]
    async with admin(redis_url) as client:
        assert await client.zcard("rc:ids") == 2500
        assert await client.zscore("rc:wf:wf-1", "run-2497") == 2497.0


async def test_a_prefix_of_many_run_ids_is_found_walking_the_runs(redis_url: str) -> None:
    """More than PREFIX_MATCHES ids start with it: the runs are walked newest first instead."""
    many = PREFIX_MATCHES + 20
    async with open_redis_store(redis_url) as store:
        await store.commit([run_of(f"p-{i:04}", "wf", float(i)) for i in range(many)])
        await store.commit([run_of(f"q-{i:04}", "wf", float(i) + 0.5) for i in range(many)])
        await store.commit([FinishRun(f"p-{i:04}", RunStatus.COMPLETED, 1.0, 0)
                            for i in range(0, many, 2)])
        cursor = RunCursor(float(many - 5), f"p-{many - 5:04}")
        page = await store.list_runs(3, run_id_prefix="p-", before=cursor)
        assert [r.info.run_id for r in page] == [f"p-{i:04}" for i in (many - 6, many - 7,
                                                                       many - 8)]
        done = await store.list_runs(2, RunStatus.COMPLETED, run_id_prefix="p-")
        assert [r.info.run_id for r in done] == [f"p-{i:04}" for i in (many - 2, many - 4)]
