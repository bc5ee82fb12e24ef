"""actors/publisher.py: one commit per round for every ready run, each run's writes published in
order and exactly once however appends and rounds interleave, a bad write failing only its run,
waiters released when the publisher stops.

The runs here are `Ledger`s, minimal `PublishingRun`s that append numbered writes and record what
they were told; the store is the real memory store behind a wrapper that records every commit
and refuses a commit carrying a write marked bad. tests/actors/test_run.py covers the run actor
on top of the publisher."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.events import RunInfo, RunStatus
from actors.publisher import Publisher
from actors.stats import RuntimeStats
from actors.store.base import AppendEvents, CreateRun, RunRecord, StoreError, Write
from actors.store.memory import MemoryStore


@attrs.define
class RecordingStore:
    """The memory store, recording each commit's writes; a commit carrying a write whose frame
    is "bad" is refused whole, as a transaction would be."""

    inner: MemoryStore = attrs.field(factory=MemoryStore)
    commits: list[list[Write]] = attrs.field(factory=list)

    async def commit(self, writes: Sequence[Write]) -> None:
        if any(isinstance(w, AppendEvents) and "bad" in w.frames for w in writes):
            await trio.lowlevel.checkpoint()
            raise StoreError("bad write")
        await self.inner.commit(writes)
        self.commits.append(list(writes))


@attrs.define(eq=False)
class Ledger:
    run_id: str
    publisher: Publisher
    queued: list[Write] = attrs.field(factory=list)
    in_flight: list[Write] = attrs.field(factory=list)
    published_frames: list[str] = attrs.field(factory=list)
    failure: StoreError | None = None
    next_index: int = 0

    def append(self, frame: str = "ok") -> None:
        writes: list[Write] = [AppendEvents(self.run_id, self.next_index, [frame])]
        if self.next_index == 0:
            info = RunInfo(self.run_id, "w", "W", "s", None, "")
            writes.insert(0, CreateRun(RunRecord(info, RunStatus.RUNNING, 0.0)))
        self.next_index += 1
        self.queued.extend(writes)
        self.publisher.ready(self)

    def take(self) -> list[Write]:
        self.in_flight, self.queued = self.queued, []
        return self.in_flight

    def committed(self) -> None:
        self.published_frames += [
            f for w in self.in_flight if isinstance(w, AppendEvents) for f in w.frames
        ]
        self.in_flight = []

    def failed(self, failure: StoreError) -> None:
        self.in_flight, self.failure = [], failure


async def test_runs_ready_together_share_one_commit() -> None:
    store = RecordingStore()
    publisher = Publisher(store, RuntimeStats())  # type: ignore[arg-type]  # a recording wrapper of the memory store
    async with trio.open_nursery() as nursery:
        await nursery.start(publisher.run)
        ledgers = [Ledger(f"run-{i}", publisher) for i in range(5)]
        for ledger in ledgers:
            ledger.append("a")
            ledger.append("b")
        await publisher.round_ended()
        nursery.cancel_scope.cancel()
    assert len(store.commits) == 1
    assert [ledger.published_frames for ledger in ledgers] == [["a", "b"]] * 5
    assert sum(publisher.stats.commit_seconds.counts) == 1  # one round, one commit observed


async def test_a_bad_write_fails_only_its_run_the_others_are_retried_alone() -> None:
    store = RecordingStore()
    publisher = Publisher(store, RuntimeStats())  # type: ignore[arg-type]  # a recording wrapper of the memory store
    async with trio.open_nursery() as nursery:
        await nursery.start(publisher.run)
        good, bad, other = (Ledger(name, publisher) for name in ("good", "bad", "other"))
        good.append("g0")
        bad.append("bad")
        other.append("o0")
        await publisher.round_ended()
        nursery.cancel_scope.cancel()
    assert (good.published_frames, other.published_frames) == (["g0"], ["o0"])
    assert bad.published_frames == [] and bad.failure is not None
    assert [[w.run_id for w in c if isinstance(w, AppendEvents)] for c in store.commits] == [["good"], ["other"]]
    assert await store.inner.read_events("bad", 0, 10) == []


async def test_a_lone_run_whose_commit_fails_is_not_retried() -> None:
    store = RecordingStore()
    publisher = Publisher(store, RuntimeStats())  # type: ignore[arg-type]  # a recording wrapper of the memory store
    async with trio.open_nursery() as nursery:
        await nursery.start(publisher.run)
        bad = Ledger("bad", publisher)
        bad.append("bad")
        await publisher.round_ended()
        nursery.cancel_scope.cancel()
    assert bad.failure is not None and store.commits == []


async def test_stopping_releases_waiters_and_leaves_what_was_queued_to_its_run() -> None:
    store = RecordingStore()
    publisher = Publisher(store, RuntimeStats())  # type: ignore[arg-type]  # a recording wrapper of the memory store
    released = trio.Event()

    async def wait_for_a_round() -> None:
        await publisher.round_ended()
        released.set()

    async with trio.open_nursery() as waiters, trio.open_nursery() as nursery:
        await nursery.start(publisher.run)
        waiters.start_soon(wait_for_a_round)
        await trio.testing.wait_all_tasks_blocked()
        assert publisher.running and not released.is_set()
        nursery.cancel_scope.cancel()
    assert released.is_set() and not publisher.running
    late = Ledger("late", publisher)
    late.append()
    assert late.queued and late.published_frames == []  # no round will take it: the run's to flush


@settings(deadline=None, max_examples=60)
@given(
    plan=st.lists(
        st.tuples(st.integers(0, 5), st.integers(1, 4), st.sampled_from(["none", "checkpoint", "round"])),
        min_size=1,
        max_size=60,
    )
)
def test_each_run_is_published_in_index_order_exactly_once_however_rounds_interleave(
    plan: list[tuple[int, int, str]],
) -> None:
    """Six runs append bursts at random moments: between checkpoints, while a round commits, or
    after it ended. Every run's published frames are its appends in order, each once, and the
    store holds exactly what was published."""

    async def scenario() -> None:
        store = RecordingStore()
        publisher = Publisher(store, RuntimeStats())  # type: ignore[arg-type]  # a recording wrapper of the memory store
        ledgers = [Ledger(f"run-{i}", publisher) for i in range(6)]
        async with trio.open_nursery() as nursery:
            await nursery.start(publisher.run)
            for run, burst, pause in plan:
                for _ in range(burst):
                    ledgers[run].append(f"{run}:{ledgers[run].next_index}")
                if pause == "checkpoint":
                    await trio.lowlevel.checkpoint()
                elif pause == "round":
                    await publisher.round_ended()
            while any(ledger.queued or ledger.in_flight for ledger in ledgers):
                await publisher.round_ended()
            nursery.cancel_scope.cancel()
        for i, ledger in enumerate(ledgers):
            expected = [f"{i}:{n}" for n in range(ledger.next_index)]
            assert ledger.published_frames == expected
            assert await store.inner.read_events(ledger.run_id, 0, 1000) == expected

    trio.run(scenario)
