"""actors/store/memory.py, beyond the shared contract (test_contract.py): the memory store checks
each commit as a transaction would and refuses it whole, and a commit lets the scheduler run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from actors.events import RunStatus
from actors.store import FinishRun, StoreError
from actors.store.memory import MemoryStore, open_memory_store
from tests.actors.store.test_contract import append, appends, create, frame


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    async with open_memory_store() as opened:
        yield opened


async def test_an_index_that_is_not_next_is_refused(store: MemoryStore) -> None:
    """The memory store refuses a gap (guarantee 1) as well as a duplicate."""
    await store.commit([create("r"), *appends("r", 0, 2)])
    with pytest.raises(StoreError, match="not next"):
        await store.commit([append("r", 3)])
    with pytest.raises(StoreError, match="not next"):
        await store.commit([append("r", 2), append("r", 4)])
    assert await store.count_events("r") == 2


async def test_writes_to_an_unknown_run_are_refused(store: MemoryStore) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        await store.commit([append("ghost", 0)])
    with pytest.raises(StoreError, match="does not exist"):
        await store.commit([FinishRun("ghost", RunStatus.COMPLETED, 1.0, 0)])
    assert await store.get_run("ghost") is None
    assert await store.count_events("ghost") == 0


async def test_a_run_created_and_appended_in_one_commit(store: MemoryStore) -> None:
    await store.commit(
        [create("r"), *appends("r", 0, 3), FinishRun("r", RunStatus.COMPLETED, 2.0, 3)]
    )
    assert await store.read_events("r", 0, 10) == [frame("r", i) for i in range(3)]
    got = await store.get_run("r")
    assert got is not None and got.status is RunStatus.COMPLETED and got.event_count == 3


async def test_a_refused_commit_leaves_earlier_writes_of_it_unapplied(store: MemoryStore) -> None:
    with pytest.raises(StoreError):
        await store.commit([create("new"), append("new", 0), append("missing", 0)])
    assert await store.get_run("new") is None
    assert await store.list_runs(10) == []


async def test_each_commit_lets_other_tasks_run(store: MemoryStore) -> None:
    """A run committing in a tight loop does not starve the rest of the process."""
    await store.commit([create("r")])
    ticks_seen: list[int] = []
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await trio.lowlevel.checkpoint()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            for index in range(50):
                await store.commit([append("r", index)])
                ticks_seen.append(ticks)
            done = True
    assert len(set(ticks_seen)) > 1  # the ticker ran between commits, not only at the end
    assert await store.count_events("r") == 50
