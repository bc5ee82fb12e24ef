"""The node's live channels: one Redis pub/sub connection per node, for the runs it follows
without owning them, and for the cancel requests of the runs it owns.

Every commit of a run's events also publishes them (the function `rc_commit` of
`actors.store.redis`) on the channel `rc:ch:<run_id>`, as `"<first index> <ended 0|1>\\n"` and
the frames, one a line. A follower on another node calls `watch(run_id)` before it reads the
stream: once Redis has confirmed the subscription, every later commit reaches the feed it gets,
and what came before is in the stream (the cursor of `actors.follow` drops what both hold).

Pub/sub delivers at most once, so a feed is closed, and its follower re-reads the stream from
its cursor, whenever something may have been missed: the connection dropped (then `watch` fails
until it is back, naming why), the run's channel was quiet for `IDLE_RECHECK` seconds, or a
commit ended the run without events. The owner of a run reads cancel requests on the channel
`rc:ctl:<its lease token>`, as `"<run_id>\\n<reason>"`; the request itself is also in the run's
record (see `actors.store.redis`), and each time the subscription to them is confirmed the owner
reads the records of its runs, so one made while the connection was down is not lost.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import trio

from actors.feed import Feed
from actors.store.base import StorageFailed
from actors.store.resp import ProtocolViolation, RespError, RespReader, command

log = logging.getLogger(__name__)

IDLE_RECHECK = 3.0  # seconds a run's channel may be quiet before its followers re-read the stream
SUBSCRIBE_TIMEOUT = 5.0  # seconds Redis has to confirm a subscription
RECONNECT_FIRST = 0.1  # seconds before the first attempt to reconnect
RECONNECT_LAST = 5.0  # the longest wait between attempts
READ_SIZE = 65536

RUN_CHANNEL = "rc:ch:"
CONTROL_CHANNEL = "rc:ctl:"


def parse_message(payload: bytes) -> tuple[int, bool, list[str]]:
    """A run channel's message: the index of its first event, whether it ended the run, and the
    frames (which never hold a line break: JSON escapes it)."""
    head, _, body = payload.partition(b"\n")
    first, ended = head.split(b" ")
    return int(first), ended == b"1", body.decode().split("\n") if body else []


class RunChannels:
    def __init__(
        self,
        host: str,
        port: int,
        password: str | None,
        on_control: Callable[[str, str], None],
        on_control_followed: Callable[[], None],
    ) -> None:
        """`on_control(run_id, reason)` is called for each cancel request of a run owned here,
        and `on_control_followed()` each time Redis confirmed the subscription to them (the
        requests made while there was none are then to be read from the runs' records)."""
        self._host = host
        self._port = port
        self._password = password
        self._on_control = on_control
        self._on_control_followed = on_control_followed
        self._control = ""  # the control channel of the node's current lease token
        self._feeds: dict[str, list[Feed]] = {}
        self._heard: dict[str, float] = {}  # when a run's channel last had a message
        self._confirmed: dict[str, trio.Event] = {}  # subscriptions asked for, by channel
        self._stream: trio.abc.Stream | None = None
        self._send_lock = trio.Lock()
        self.failure: str | None = "not connected yet"

    @property
    def followed_runs(self) -> int:
        return len(self._feeds)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the connection up until cancelled: reconnect with backoff when it drops. Started
        once the first attempt connected or failed (`watch` then says why it cannot)."""
        started = False

        def up() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        delay = RECONNECT_FIRST
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._recheck_idle)
            while True:
                try:
                    await self._connected(up)
                except (
                    OSError, trio.BrokenResourceError, trio.ClosedResourceError, ProtocolViolation
                ) as error:
                    if self.failure is None:
                        delay = RECONNECT_FIRST  # it was up: try again soon
                    self._dropped(f"Redis pub/sub connection lost: {error or type(error).__name__}")
                up()
                await trio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, RECONNECT_LAST)

    async def _connected(self, up: Callable[[], None]) -> None:
        """Connect, subscribe to every channel followed, call `up`, and dispatch messages until
        the connection fails."""
        stream = await trio.open_tcp_stream(self._host, self._port)
        async with stream:
            reader = RespReader()
            if self._password is not None:
                await stream.send_all(command("AUTH", self._password))
            channels = [RUN_CHANNEL + run_id for run_id in self._feeds]
            if self._control:
                channels.append(self._control)
            for channel in channels:
                self._confirmed[channel] = trio.Event()
            await stream.send_all(command("SUBSCRIBE", *channels) if channels else command("PING"))
            self._stream = stream
            self.failure = None
            log.info("Redis pub/sub connected (%s:%d)", self._host, self._port)
            up()
            while True:
                data = await stream.receive_some(READ_SIZE)
                if not data:
                    raise trio.BrokenResourceError("Redis closed the connection")
                reader.feed(data)
                for reply in reader.replies():
                    self._dispatch(reply)

    def _dropped(self, why: str) -> None:
        if self.failure is None:
            log.warning("%s; reconnecting", why)
        self.failure = why
        self._stream = None
        for feeds in self._feeds.values():
            for feed in feeds:
                feed.close()
        self._feeds.clear()
        self._heard.clear()
        confirmed, self._confirmed = self._confirmed, {}
        for event in confirmed.values():
            event.set()  # the waiters see the connection gone

    def _dispatch(self, reply: object) -> None:
        if isinstance(reply, RespError):
            raise trio.BrokenResourceError(f"Redis refused a pub/sub command: {reply.message}")
        if not isinstance(reply, list) or len(reply) != 3:
            return  # the PONG of a keep-alive, the reply to AUTH
        kind, channel_bytes, payload = reply
        if not isinstance(channel_bytes, bytes):
            return
        channel = channel_bytes.decode()
        if kind == b"subscribe":
            event = self._confirmed.get(channel)
            if event is not None:
                event.set()
            if channel == self._control:
                self._on_control_followed()
        elif kind == b"message" and isinstance(payload, bytes):
            if channel.startswith(RUN_CHANNEL):
                self._publish(channel.removeprefix(RUN_CHANNEL), payload)
            elif channel == self._control:
                run_id, _, reason = payload.decode().partition("\n")
                self._on_control(run_id, reason)

    def _publish(self, run_id: str, payload: bytes) -> None:
        feeds = self._feeds.get(run_id)
        if not feeds:
            return
        self._heard[run_id] = trio.current_time()
        first, ended, frames = parse_message(payload)
        for feed in feeds:
            if not frames:
                feed.close()  # the run ended without events: its followers read the end
            else:
                feed.push(first, frames, last=ended)
        feeds[:] = [feed for feed in feeds if not feed.closed]

    async def watch(self, run_id: str, capacity: int) -> Feed:
        """A feed of the events of `run_id` committed from now on, returned once Redis confirmed
        the subscription. Raises StorageFailed while the connection is down."""
        if self._stream is None:
            raise StorageFailed(f"no live stream from Redis: {self.failure}")
        feed = Feed(capacity)
        self._feeds.setdefault(run_id, []).append(feed)
        channel = RUN_CHANNEL + run_id
        event = self._confirmed.get(channel)
        if event is None:
            self._heard[run_id] = trio.current_time()
            event = self._confirmed[channel] = trio.Event()
            await self._send(command("SUBSCRIBE", channel))
        with trio.move_on_after(SUBSCRIBE_TIMEOUT):
            await event.wait()
        if self._confirmed.get(channel) is not event or not event.is_set():
            feed.close()
            why = self.failure or f"Redis did not confirm the subscription within {SUBSCRIBE_TIMEOUT} s"
            raise StorageFailed(f"no live stream from Redis: {why}")
        return feed

    async def follow_control(self, token: str) -> None:
        """Take the cancel requests of the runs owned under lease token `token` from now on."""
        old, self._control = self._control, CONTROL_CHANNEL + token
        if self._stream is None:
            return  # subscribed when the connection is back
        if old:
            await self._send(command("UNSUBSCRIBE", old))
        self._confirmed[self._control] = trio.Event()
        await self._send(command("SUBSCRIBE", self._control))

    async def _send(self, data: bytes) -> None:
        stream = self._stream
        if stream is None:
            return
        try:
            async with self._send_lock:
                await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the reading task sees the connection gone and reconnects

    async def _recheck_idle(self) -> None:
        """Every `IDLE_RECHECK` seconds: drop the channels nobody follows any more, and close the
        feeds of quiet channels so that their followers re-read the stream."""
        while True:
            await trio.sleep(IDLE_RECHECK)
            unfollowed = self._recheck(trio.current_time())
            if unfollowed:
                await self._send(command("UNSUBSCRIBE", *unfollowed))

    def _recheck(self, now: float) -> list[str]:
        """One re-check (no checkpoint, so no message or drop comes in between); the channels to
        unsubscribe from."""
        unfollowed = []
        for run_id, feeds in list(self._feeds.items()):
            feeds = [feed for feed in feeds if not feed.closed]
            if not feeds:
                del self._feeds[run_id]
                self._heard.pop(run_id, None)
                channel = RUN_CHANNEL + run_id
                if self._confirmed.pop(channel, None) is not None:
                    unfollowed.append(channel)
                continue
            self._feeds[run_id] = feeds
            if now - self._heard.get(run_id, now) >= IDLE_RECHECK:
                for feed in feeds:
                    feed.close()
        return unfollowed
