"""Stores of run histories; `open_store` picks one from a URL such as `sqlite:./runcast.db`."""

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
    RunRecord,
    SaveGraph,
    StorageFailed,
    Store,
    StoreError,
    StoreInUse,
    Write,
    WriteRefused,
)
from actors.store.memory import MemoryStore, open_memory_store
from actors.store.sqlite import SQLiteStore, open_sqlite_store

__all__ = [
    "FIRST_EPOCH",
    "AppendEvents",
    "CheckWritable",
    "ClaimRun",
    "CreateRun",
    "FinishRun",
    "GraphRecord",
    "MemoryStore",
    "RunRecord",
    "SQLiteStore",
    "SaveGraph",
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
    """`memory` -> ("memory", ""); `sqlite:PATH` -> ("sqlite", PATH). Anything else is refused
    with a message that says what is accepted."""
    if url == "memory":
        return "memory", ""
    kind, _, path = url.partition(":")
    if kind == "sqlite" and path:
        return "sqlite", path
    raise ValueError(f"unknown store {url!r}: use 'memory' or 'sqlite:PATH'")


@asynccontextmanager
async def open_store(url: str) -> AsyncIterator[Store]:
    kind, path = parse_store_url(url)
    if kind == "memory":
        async with open_memory_store() as memory:
            yield memory
    else:
        async with open_sqlite_store(path) as sqlite:
            yield sqlite
