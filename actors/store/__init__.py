"""Stores of run histories; `open_store` picks one from a URL such as `sqlite:./runcast.db`,
`memory` or `redis://127.0.0.1:6379/0`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from actors.store.base import (
    FIRST_EPOCH,
    AppendEvents,
    CheckWritable,
    ClaimRun,
    CreateRun,
    FinishRun,
    GraphRecord,
    HistoryGone,
    OwnershipLost,
    RunCursor,
    RunRecord,
    SaveGraph,
    SharedStore,
    StorageFailed,
    Store,
    StoreError,
    StoreInUse,
    Write,
    WriteRefused,
)
from actors.store.memory import MemoryStore, open_memory_store
from actors.store.redis import RedisStore, open_redis_store
from actors.store.redis_lease import NodeSettings
from actors.store.sqlite import SQLiteStore, open_sqlite_store

__all__ = [
    "FIRST_EPOCH",
    "AppendEvents",
    "CheckWritable",
    "ClaimRun",
    "CreateRun",
    "FinishRun",
    "GraphRecord",
    "HistoryGone",
    "OwnershipLost",
    "RunCursor",
    "MemoryStore",
    "NodeSettings",
    "RedisStore",
    "RunRecord",
    "SQLiteStore",
    "SaveGraph",
    "SharedStore",
    "StorageFailed",
    "Store",
    "StoreError",
    "StoreInUse",
    "Write",
    "WriteRefused",
    "open_store",
    "parse_store_url",
]


def parse_store_url(url: str) -> tuple[str, str]:
    """`memory` -> ("memory", ""); `sqlite:PATH` -> ("sqlite", PATH); `redis://HOST:PORT/DB` (or
    `rediss://`) -> ("redis", the URL). Anything else is refused with a message that says what
    is accepted."""
    if url == "memory":
        return "memory", ""
    kind, _, path = url.partition(":")
    if kind == "sqlite" and path:
        return "sqlite", path
    if kind in ("redis", "rediss") and path.startswith("//") and len(path) > 2:
        return "redis", url
    raise ValueError(
        f"unknown store {url!r}: use 'memory', 'sqlite:PATH' or 'redis://HOST:PORT/DB'"
    )


@asynccontextmanager
async def open_store(
    url: str, *, node: NodeSettings | None = None, retention: float | None = None
) -> AsyncIterator[Store]:
    """The store of `url`. `node` names this node and its lease, and `retention` (seconds, None
    for ever) is how long a finished run's history is kept, in a store several nodes share
    (Redis); the other stores are one process's and keep histories for ever."""
    kind, path = parse_store_url(url)
    if kind == "memory":
        async with open_memory_store() as memory:
            yield memory
    elif kind == "sqlite":
        async with open_sqlite_store(path) as sqlite:
            yield sqlite
    else:
        async with open_redis_store(path, node, retention=retention) as redis:
            yield redis
