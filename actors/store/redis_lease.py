"""A node's lease in Redis: the key `rc:node:<node_id>` holds the token of the node's current
incarnation (`<node_id>#<random>`) and expires unless renewed.

The Redis store writes a run only while the run's owner token is the one its node's lease holds
(the function `rc_commit` of `actors.store.redis` checks it), and any node may close a run whose
owner's lease is gone. A node takes its lease when it opens the store, waiting for the lease of
a previous incarnation under the same node id to expire, and refusing to start (`StoreInUse`)
if a live node keeps renewing it. It renews the lease every `renew` seconds; a renewal that
finds the lease gone (the node was paused, or cut off from Redis, for longer than `ttl`) takes a
new lease with a new token, so that nothing written under the old one is accepted again, and
says so (`on_lost`).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable

import attrs
import coredis
import trio
from coredis.exceptions import RedisError

from actors.store.base import StoreInUse

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = 10.0
DEFAULT_LEASE_RENEW = 3.0


def default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@attrs.frozen
class NodeSettings:
    node_id: str = attrs.field(factory=default_node_id)
    lease_ttl: float = DEFAULT_LEASE_TTL  # seconds a lease lives unless renewed
    lease_renew: float = DEFAULT_LEASE_RENEW  # seconds between renewals

    def __attrs_post_init__(self) -> None:
        if not self.node_id or "#" in self.node_id or len(self.node_id) > 200:
            raise ValueError(f"a node id is 1 to 200 characters without '#', not {self.node_id!r}")
        if not 0 < self.lease_renew < self.lease_ttl:
            raise ValueError(
                f"the lease renewal ({self.lease_renew} s) must be positive and shorter than the"
                f" lease ({self.lease_ttl} s)"
            )


def new_token(node_id: str) -> str:
    return f"{node_id}#{uuid.uuid4().hex[:16]}"


class NodeLease:
    def __init__(self, redis: coredis.Redis[str], settings: NodeSettings) -> None:
        self._redis = redis
        self.settings = settings
        self.token = new_token(settings.node_id)
        self.failure: str | None = None  # why the last renewal failed, until one succeeds

    async def _call(self, mode: str) -> str:
        ttl_ms = str(round(self.settings.lease_ttl * 1000))
        node = self.settings.node_id
        return str(await self._redis.fcall("rc_lease", [], [mode, node, self.token, ttl_ms]))

    async def acquire(self) -> None:
        """Take the lease, waiting up to one lease's time for another incarnation's to expire.
        Raises StoreInUse, RedisError."""
        with trio.move_on_after(self.settings.lease_ttl + self.settings.lease_renew):
            while await self._call("acquire") != "OK":
                await trio.sleep(min(self.settings.lease_renew, 0.5))
            return
        raise StoreInUse(
            f"node id {self.settings.node_id!r} is in use: another runcast node keeps renewing"
            " its lease in Redis; give this node another --node-id"
        )

    async def keep(self, on_lost: Callable[[str, str], Awaitable[None]]) -> None:
        """Renew the lease every `renew` seconds until cancelled. If it was lost, take a new one
        under a new token and call `on_lost(new_token, why)`."""
        while True:
            await trio.sleep(self.settings.lease_renew)
            try:
                if await self._call("renew") == "OK":
                    self.failure = None
                    continue
                why = (
                    f"node {self.settings.node_id} lost its lease: it could not renew it within"
                    f" {self.settings.lease_ttl} s"
                )
                log.error("%s; its runs are closed and it takes a new lease", why)
                self.token = new_token(self.settings.node_id)
                self.failure = None
                if await self._call("acquire") != "OK":
                    self.failure = f"node id {self.settings.node_id!r} is taken by another node"
                    log.error("%s", self.failure)
                await on_lost(self.token, why)
            except RedisError as error:
                if self.failure is None:
                    log.error("could not renew the lease of node %s: %s", self.settings.node_id, error)
                self.failure = str(error)

    async def release(self) -> None:
        """Give the lease up (at a clean stop), so that a restart need not wait for it."""
        try:
            await self._call("release")
        except RedisError as error:
            log.warning("could not release the lease of node %s: %s", self.settings.node_id, error)
