"""actors/store/redis_lease.py on a real redis-server: a node takes its lease once a previous
incarnation's has expired, refuses to start beside a live node of the same id, gives its lease
up at a clean stop, and takes a new one (saying so) when it lost it, after which the runs it
owned under the old one are no longer its to write."""

from __future__ import annotations

import pytest
import trio

from actors.events import RunStatus
from actors.store import FinishRun, StoreInUse
from actors.store.base import CancelRequested, LeaseLost, OwnershipLost
from actors.store.redis import open_redis_store
from actors.store.redis_lease import NodeLease, NodeSettings
from tests.actors.store.test_contract import append, appends, create, frame
from tests.actors.store.test_redis import admin
from tests.actors.store.test_redis_channels import assert_no_notice, next_notice, node


def test_node_settings_refuse_a_renewal_not_shorter_than_the_lease_and_bad_ids() -> None:
    for ttl, renew in [(0.5, 0.5), (0.5, 1.0), (1.0, 0.0), (1.0, -1.0)]:
        with pytest.raises(ValueError, match="renewal"):
            NodeSettings("n", ttl, renew)
    for node_id in ["", "a#b", "x" * 201]:
        with pytest.raises(ValueError, match="node id"):
            NodeSettings(node_id, 1.0, 0.5)


async def test_acquire_waits_for_a_previous_incarnations_lease_to_expire(redis_url: str) -> None:
    async with admin(redis_url) as client:
        previous = NodeLease(client, node("n1", ttl=0.3, renew=0.1))
        await previous.acquire()  # ... and is never renewed: that process died
        assert await client.get("rc:node:n1") == previous.token
        started = trio.current_time()
        async with open_redis_store(redis_url, node("n1")) as store:
            waited = trio.current_time() - started
            assert store.lease.token != previous.token
            assert store.lease.token.startswith("n1#")
            assert await client.get("rc:node:n1") == store.lease.token
            await store.commit([create("r")])  # it writes under its own lease
        assert 0.15 <= waited < 0.6  # the rest of the 0.3 s lease, not the whole 0.6 s allowed


async def test_a_second_node_with_the_same_id_is_refused_while_the_first_renews(
    redis_url: str,
) -> None:
    settings = node("n1")
    async with open_redis_store(redis_url, settings) as first:
        token = first.lease.token
        started = trio.current_time()
        # raised through the task groups of coredis's client, as `runcast serve` expects it
        # (`except*` in web/cli.py)
        in_use = pytest.RaisesExc(StoreInUse, match="'n1' is in use")
        with pytest.RaisesGroup(in_use, flatten_subgroups=True, allow_unwrapped=True):
            async with open_redis_store(redis_url, settings):
                pytest.fail("opened beside a live node of the same id")
        waited = trio.current_time() - started
        assert settings.lease_ttl <= waited <= settings.lease_ttl + settings.lease_renew + 0.3
        # the first keeps its lease, and its runs
        assert first.lease.token == token
        await first.commit([create("r"), *appends("r", 0, 2)])
        async with admin(redis_url) as client:
            assert await client.get("rc:node:n1") == token


async def test_a_clean_close_releases_the_lease_so_a_restart_takes_it_at_once(
    redis_url: str,
) -> None:
    settings = node("n1", ttl=5.0, renew=1.0)  # a lease left behind would hold a restart 5 s
    async with open_redis_store(redis_url, settings) as store:
        await store.commit([create("r")])
    async with admin(redis_url) as client:
        assert await client.exists(["rc:node:n1"]) == 0
    started = trio.current_time()
    async with open_redis_store(redis_url, settings) as again:
        assert trio.current_time() - started < 1.0
        await again.commit([create("r2")])


async def test_a_lease_deleted_behind_the_nodes_back_is_replaced_and_its_runs_are_lost(
    redis_url: str,
) -> None:
    async with (
        open_redis_store(redis_url, node("n1")) as store,
        open_redis_store(redis_url, node("n2")) as other,
    ):
        await store.commit([create("old"), *appends("old", 0, 2)])
        old_token = store.lease.token
        async with admin(redis_url) as client:
            assert await client.delete(["rc:node:n1"]) == 1
            with trio.fail_after(5):
                notice = await next_notice(store)
            assert isinstance(notice, LeaseLost) and "n1 lost its lease" in notice.why
            assert store.lease.token != old_token and store.lease.token.startswith("n1#")
            assert await client.get("rc:node:n1") == store.lease.token

        # what it owned under the old token is not its to write any more
        with pytest.raises(OwnershipLost, match="n1 no longer holds run old"):
            await store.commit([append("old", 2)])
        with pytest.raises(OwnershipLost):
            await store.commit([FinishRun("old", RunStatus.COMPLETED, 2.0, 2)])
        assert await store.read_events("old", 0, 10) == [frame("old", 0), frame("old", 1)]
        assert [r.info.run_id for r in await other.unfinished_runs()] == ["old"]

        # under the new lease it writes new runs, and hears their cancel requests
        await store.commit([create("new"), *appends("new", 0, 1)])
        assert await other.request_cancel("new", "stop") is True
        with trio.fail_after(5):
            assert await next_notice(store) == CancelRequested("new", "stop")


async def test_renewals_keep_the_lease_alive_long_past_its_ttl(redis_url: str) -> None:
    async with open_redis_store(redis_url, node("n1")) as store:
        token = store.lease.token
        await store.commit([create("r")])
        for index in range(10):  # 1.5 s: three times the lease
            await trio.sleep(0.15)
            await store.commit([append("r", index)])
        assert store.lease.token == token
        assert_no_notice(store)  # no LeaseLost
