"""actors/store/redis.py, beyond the shared contract (test_contract.py), on a real redis-server:
the layout other nodes will read (one stream entry `<index>-1` per event, the run's hash), exact
timestamps, and a Redis that cannot be reached is a StorageFailed naming it."""

from __future__ import annotations

import socket

import coredis
import pytest

from actors.events import RunStatus
from actors.store import FinishRun, StorageFailed
from actors.store.redis import open_redis_store
from tests.actors.store.test_contract import appends, create, frame, record


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
