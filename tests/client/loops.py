"""The two event loops the client runs on, for tests that run it on each: trio (the test's own
loop) and asyncio (a loop of its own in a worker thread, while the server goes on serving on
the test's trio loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
import trio

Work = Callable[[], Coroutine[Any, Any, Any]]
Loop = Callable[[Work], Awaitable[Any]]


async def on_trio(work: Work) -> Any:
    return await work()


async def on_asyncio(work: Work) -> Any:
    return await trio.to_thread.run_sync(lambda: asyncio.run(work()))


# parametrizes `loop` (on_trio, on_asyncio) and `library`, what sniffio names it
ON_BOTH_LOOPS = pytest.mark.parametrize(
    ("loop", "library"), [(on_trio, "trio"), (on_asyncio, "asyncio")], ids=["trio", "asyncio"]
)
