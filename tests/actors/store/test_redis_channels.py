"""actors/store/redis_channels.py through the Redis store, on a real redis-server: a follower's
feed gets exactly what is committed after `watch` returned, from any node; quiet channels and a
lost connection close the feeds (their followers re-read the stream); `watch` fails while the
connection is down, naming why, and works again once it is back; cancel requests reach the
run's owner as notices."""

from __future__ import annotations

import coredis
import pytest
import trio

from actors.events import RunStatus
from actors.feed import Feed
from actors.store import FinishRun, StorageFailed
from actors.store.base import CancelRequested, Notice, RecheckCancels
from actors.store.redis import RedisStore, open_redis_store
from actors.store.redis_channels import IDLE_RECHECK
from actors.store.redis_lease import NodeSettings
from tests.actors.store.test_contract import append, appends, create, frame
from tests.conftest import RedisServer


def node(node_id: str, ttl: float = 0.5, renew: float = 0.1) -> NodeSettings:
    return NodeSettings(node_id, ttl, renew)


async def collect(feed: Feed, count: int, timeout: float = 5.0) -> tuple[int, list[str]]:
    """The next `count` events of `feed` (the index of the first, the frames), checking that
    its batches follow each other without a gap."""
    first: int | None = None
    frames: list[str] = []
    with trio.fail_after(timeout):
        while len(frames) < count:
            at, got = await feed.take(100)
            assert got, f"the feed closed after {len(frames)} of {count} events"
            if first is None:
                first = at
            assert at == first + len(frames), "batches out of order or with a gap"
            frames += got
    assert first is not None and len(frames) == count
    return first, frames


async def closed_within(feed: Feed, timeout: float) -> None:
    """Wait until `feed` is closed (and holds nothing more)."""
    with trio.fail_after(timeout):
        while True:
            _, got = await feed.take(100)
            if not got:
                assert feed.closed
                return


async def kill_pubsub_connections(url: str) -> int:
    async with coredis.Redis.from_url(url, decode_responses=True) as admin:
        return int(await admin.client_kill(type_=coredis.PureToken.PUBSUB))


async def next_notice(store: RedisStore, within: float = 5.0) -> Notice:
    """The store's next notice but RecheckCancels (which each confirmed subscription to the
    node's cancel requests gives)."""
    with trio.fail_after(within):
        while isinstance(notice := await store.notices().receive(), RecheckCancels):
            pass
    return notice


def assert_no_notice(store: RedisStore) -> None:
    with pytest.raises(trio.WouldBlock):
        while isinstance(store.notices().receive_nowait(), RecheckCancels):
            pass


async def test_a_feed_gets_the_events_committed_after_watch_and_ends_with_the_run(
    redis_url: str,
) -> None:
    async with open_redis_store(redis_url, node("n1")) as store:
        await store.commit([create("r"), *appends("r", 0, 3)])
        feed = await store.watch("r", 100)
        await store.commit(appends("r", 3, 5))
        await store.commit([append("r", 5)])
        assert await collect(feed, 3) == (3, [frame("r", i) for i in range(3, 6)])
        assert not feed.closed and not feed.ended

        # the terminal commit: its events arrive marked last, and the feed ends
        await store.commit([append("r", 6), FinishRun("r", RunStatus.COMPLETED, 2.0, 7)])
        assert await collect(feed, 1) == (6, [frame("r", 6)])
        assert feed.ended and feed.closed
        assert await feed.take(100) == (6, [])


async def test_watch_returns_once_redis_has_the_subscription(redis_url: str) -> None:
    """While Redis holds every client's commands (CLIENT PAUSE), `watch` waits: it returns only
    once Redis confirmed the subscription, so a commit made right after is in the feed."""
    async with (
        open_redis_store(redis_url, node("n1", ttl=5.0, renew=1.0)) as store,
        coredis.Redis.from_url(redis_url, decode_responses=True) as admin,
    ):
        await store.commit([create("r")])
        await admin.client_pause(300)
        started = trio.current_time()
        feed = await store.watch("r", 100)
        assert trio.current_time() - started >= 0.25
        assert await admin.pubsub_numsub("rc:ch:r") == {"rc:ch:r": 1}
        await store.commit([append("r", 0)])
        assert await collect(feed, 1) == (0, [frame("r", 0)])


async def test_a_run_that_ends_without_events_closes_its_feeds_without_ending_them(
    redis_url: str,
) -> None:
    """The end is not an event of the feed then: its followers read it from the store."""
    async with open_redis_store(redis_url, node("n1")) as store:
        await store.commit([create("r"), *appends("r", 0, 2)])
        feeds = [await store.watch("r", 100) for _ in range(2)]
        await store.commit([FinishRun("r", RunStatus.CANCELLED, 2.0, 2)])
        for feed in feeds:
            await closed_within(feed, 5)
            assert not feed.ended


async def test_a_run_of_one_node_is_followed_from_another(redis_url: str) -> None:
    async with (
        open_redis_store(redis_url, node("n1")) as one,
        open_redis_store(redis_url, node("n2")) as two,
    ):
        await one.commit([create("r"), *appends("r", 0, 2)])
        feed = await two.watch("r", 100)
        assert await two.read_events("r", 0, 100) == [frame("r", i) for i in range(2)]
        await one.commit(appends("r", 2, 4))
        assert await collect(feed, 2) == (2, [frame("r", 2), frame("r", 3)])
        await one.commit([append("r", 4), FinishRun("r", RunStatus.COMPLETED, 2.0, 5)])
        assert await collect(feed, 1) == (4, [frame("r", 4)])
        assert feed.ended


async def test_a_feed_gets_no_events_of_other_runs(redis_url: str) -> None:
    async with open_redis_store(redis_url, node("n1")) as store:
        await store.commit([create("a"), create("b")])
        feed = await store.watch("a", 100)
        await store.commit(appends("b", 0, 3))
        await store.commit([append("a", 0)])
        assert await collect(feed, 1) == (0, [frame("a", 0)])


async def test_a_quiet_channel_closes_its_feeds_and_a_busy_one_keeps_them(redis_url: str) -> None:
    """Followers of a run whose channel was quiet for IDLE_RECHECK seconds re-read the stream
    (a message may have been lost); a run that keeps committing keeps its feeds open. Waits
    for the real IDLE_RECHECK (3 to 6 s): the recheck runs on the real clock beside a socket."""
    async with open_redis_store(redis_url, node("n1")) as store:
        await store.commit([create("quiet"), create("busy")])
        watched = trio.current_time()
        quiet = await store.watch("quiet", 100)
        busy = await store.watch("busy", 1000)
        count = 0
        with trio.fail_after(2 * IDLE_RECHECK + 2):
            while not quiet.closed:
                await store.commit([append("busy", count)])
                count += 1
                await trio.sleep(0.2)
        assert trio.current_time() - watched >= IDLE_RECHECK
        assert not quiet.ended and await quiet.take(100) == (0, [])
        assert not busy.closed
        assert await collect(busy, count) == (0, [frame("busy", i) for i in range(count)])


async def test_a_lost_connection_closes_every_feed_and_watch_fails_until_it_is_back(
    redis_url: str,
) -> None:
    async with open_redis_store(redis_url, node("n1")) as store:
        await store.commit([create("a"), create("b")])
        feeds = [await store.watch("a", 100), await store.watch("a", 100), await store.watch("b", 100)]
        assert await kill_pubsub_connections(redis_url) == 1
        for feed in feeds:
            await closed_within(feed, 5)
        # the reconnection waits at least RECONNECT_FIRST / 2: the follower, woken by the close,
        # asks again before it
        with pytest.raises(StorageFailed, match="connection lost: Redis closed the connection"):
            await store.watch("a", 100)
        assert store.failure is not None and "connection lost" in store.failure

        with trio.fail_after(5):
            while True:
                try:
                    feed = await store.watch("a", 100)
                    break
                except StorageFailed:
                    await trio.sleep(0.02)
        assert store.failure is None
        await store.commit([append("a", 0)])
        assert await collect(feed, 1) == (0, [frame("a", 0)])


async def test_while_redis_is_down_watch_names_why_and_works_once_it_is_back(
    own_redis: RedisServer,
) -> None:
    async with open_redis_store(own_redis.url, node("n1", ttl=5.0, renew=1.0)) as store:
        await store.commit([create("r")])
        feed = await store.watch("r", 100)
        own_redis.kill()
        await closed_within(feed, 5)
        with trio.fail_after(5):  # the reconnections fail, and watch says why
            while True:
                with pytest.raises(StorageFailed, match="no live stream from Redis") as failed:
                    await store.watch("r", 100)
                if "Redis closed the connection" not in str(failed.value):
                    break
                await trio.sleep(0.02)
        assert "connection lost" in str(failed.value)
        await trio.sleep(0.3)
        with pytest.raises(StorageFailed, match="connection lost"):
            await store.watch("r", 100)
        own_redis.start()
        with trio.fail_after(10):
            while True:
                try:
                    feed = await store.watch("r", 100)
                    break
                except StorageFailed:
                    await trio.sleep(0.05)
        await store.commit([append("r", 0)])
        assert await collect(feed, 1) == (0, [frame("r", 0)])


async def test_cancel_requests_reach_the_runs_owner_once(redis_url: str) -> None:
    async with (
        open_redis_store(redis_url, node("n1")) as one,
        open_redis_store(redis_url, node("n2")) as two,
    ):
        await one.commit([create("r1"), create("done")])
        await two.commit([create("r2")])
        await one.commit([FinishRun("done", RunStatus.COMPLETED, 2.0, 0)])

        assert await two.request_cancel("r1", "stop it") is True
        with trio.fail_after(5):
            assert await next_notice(one) == CancelRequested("r1", "stop it")
        assert await one.request_cancel("r2", "from one") is True  # the owner is asked, wherever
        with trio.fail_after(5):
            assert await next_notice(two) == CancelRequested("r2", "from one")

        assert await two.request_cancel("r1", "again") is False  # being cancelled already
        assert await one.request_cancel("r1", "by itself") is False
        assert await two.request_cancel("done", "too late") is False
        assert await two.request_cancel("unknown", "what run") is False

        # none of these reached a node: a later request shows what got through after them
        assert await two.request_cancel("r2", "marker") is False
        await one.commit([create("r3")])
        assert await two.request_cancel("r3", "marker") is True
        with trio.fail_after(5):
            assert await next_notice(one) == CancelRequested("r3", "marker")
        assert_no_notice(one)
        assert_no_notice(two)


async def test_cancel_requests_still_arrive_after_the_connection_came_back(redis_url: str) -> None:
    async with (
        open_redis_store(redis_url, node("n1")) as one,
        open_redis_store(redis_url, node("n2")) as two,
    ):
        await one.commit([create("r")])
        feed = await one.watch("r", 100)
        await kill_pubsub_connections(redis_url)
        await closed_within(feed, 5)
        with trio.fail_after(5):  # once a watch is confirmed, so is the control channel before it
            while True:
                try:
                    await one.watch("r", 100)
                    break
                except StorageFailed:
                    await trio.sleep(0.02)
        assert await two.request_cancel("r", "after the reconnection") is True
        with trio.fail_after(5):
            assert await next_notice(one) == CancelRequested("r", "after the reconnection")


async def test_a_cancel_request_made_while_the_owner_cannot_hear_is_read_from_the_record(
    redis_url: str,
) -> None:
    """A request published while the owner's pub/sub connection is down reaches nobody; once
    the owner's subscription is confirmed again it is told to recheck (RecheckCancels), and
    the run's record has the request."""
    async with (
        open_redis_store(redis_url, node("n1")) as one,
        open_redis_store(redis_url, node("n2")) as two,
    ):
        await one.commit([create("r"), create("other")])
        feed = await one.watch("r", 100)
        while True:  # the subscription of the start
            try:
                one.notices().receive_nowait()
            except trio.WouldBlock:
                break
        await kill_pubsub_connections(redis_url)  # Redis drops both nodes' subscriptions now
        assert await two.request_cancel("r", "while down") is True  # published to nobody
        await closed_within(feed, 5)
        with trio.fail_after(5):
            assert isinstance(await one.notices().receive(), RecheckCancels)
        assert await one.requested_cancels(["r", "other", "unknown"]) == {"r": "while down"}
        await one.commit([FinishRun("r", RunStatus.CANCELLED, 2.0, 0)])
        assert await one.requested_cancels(["r"]) == {}  # only running runs


async def test_a_connection_lost_while_the_recheck_unsubscribes_does_not_crash_the_store(
    redis_url: str,
) -> None:
    """The idle re-check unsubscribes from 3,000 channels at once while the connection is
    killed: the store carries on and watches again once it is back."""
    before = trio.current_time()
    async with open_redis_store(redis_url, node("n1")) as store:
        count = 3000
        for index in range(count):
            feed = await store.watch(f"r{index}", 10)
            feed.close()  # the follower stopped: the next recheck unsubscribes its channel
        assert store.channels.followed_runs == count
        await trio.sleep_until(before + IDLE_RECHECK - 0.05)
        with trio.fail_after(2):
            while store.channels.followed_runs == count:
                await trio.sleep(0)
        await kill_pubsub_connections(redis_url)  # while the recheck goes on
        with trio.fail_after(5):
            while True:
                try:
                    await store.watch("after", 10)
                    break
                except StorageFailed:
                    await trio.sleep(0.02)
        assert store.channels.followed_runs == 1  # the watch just made


async def test_watch_without_a_confirmation_within_the_timeout_raises(redis_url: str) -> None:
    """A subscription Redis does not confirm within SUBSCRIBE_TIMEOUT is a StorageFailed, not a
    feed that may miss events."""
    async with open_redis_store(redis_url, node("n1", ttl=30.0, renew=10.0)) as store:
        async with coredis.Redis.from_url(redis_url, decode_responses=True) as admin:
            await admin.client_pause(6500)  # every client's commands wait (SUBSCRIBE too)
            try:
                started = trio.current_time()
                with pytest.raises(StorageFailed):
                    await store.watch("r", 10)
                    pytest.fail(
                        f"watch returned a feed after {trio.current_time() - started:.2f} s"
                        " although Redis never confirmed the subscription"
                    )
            finally:
                await admin.client_unpause()
