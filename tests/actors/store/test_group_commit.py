"""actors/store/group_commit.py: concurrent commits share rounds; a bad write fails only its own
caller; close flushes what is queued and refuses the rest.

The committer is driven by a recording `apply` (its collaborator, standing in for one SQLite
transaction) that can be held at a gate, so which commits share a round is decided by the test,
not by timing. tests/actors/store/test_sqlite.py checks the same behaviour on the real store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import attrs
import pytest
import trio
import trio.testing

from actors.store.base import AppendEvents, StoreError, Write
from actors.store.group_commit import GroupCommitter


@attrs.define
class Applier:
    """Records each apply call (one per transaction); fails a transaction containing a write
    whose frame is "bad"; can hold the next call at a gate."""

    calls: list[list[list[str]]] = attrs.field(factory=list)
    gate: trio.Event | None = None
    entered: trio.Event = attrs.field(factory=trio.Event)

    async def __call__(self, batch: list[Sequence[Write]]) -> None:
        frames = [
            [f for w in writes if isinstance(w, AppendEvents) for f in w.frames] for writes in batch
        ]
        self.entered.set()
        if self.gate is not None:
            gate, self.gate = self.gate, None
            await gate.wait()
        await trio.lowlevel.checkpoint()
        if any("bad" in f for f in frames):
            raise RuntimeError("UNIQUE constraint failed")
        self.calls.append(frames)

    @property
    def applied(self) -> list[str]:
        return [f for call in self.calls for writes in call for f in writes]


def write(name: str, index: int = 0) -> list[Write]:
    return [AppendEvents(name, index, [name])]


@attrs.define
class Outcomes:
    results: dict[str, BaseException | None] = attrs.field(factory=dict)

    async def commit(self, committer: GroupCommitter, name: str) -> None:
        try:
            await committer.commit(write(name))
        except StoreError as error:
            self.results[name] = error
        else:
            self.results[name] = None


@pytest.fixture
async def applier() -> Applier:
    return Applier()


@pytest.fixture
async def committer(applier: Applier) -> AsyncIterator[GroupCommitter]:
    committer = GroupCommitter(applier)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(committer.run)
            yield committer
            committer.close()


async def hold_first_round(
    applier: Applier, committer: GroupCommitter, nursery: trio.Nursery, outcomes: Outcomes
) -> trio.Event:
    """Start a commit "first" and hold its round in `apply` until the returned event is set."""
    gate = trio.Event()
    applier.gate = gate
    nursery.start_soon(outcomes.commit, committer, "first")
    await applier.entered.wait()
    return gate


async def test_commits_queued_during_a_round_share_the_next_round(
    applier: Applier, committer: GroupCommitter
) -> None:
    outcomes = Outcomes()
    async with trio.open_nursery() as nursery:
        gate = await hold_first_round(applier, committer, nursery, outcomes)
        for i in range(20):
            nursery.start_soon(outcomes.commit, committer, f"w{i}")
        await trio.testing.wait_all_tasks_blocked()
        assert outcomes.results == {}  # nobody answered before their round is durable
        gate.set()
    assert all(result is None for result in outcomes.results.values())
    assert len(outcomes.results) == 21
    assert committer.rounds == 2 < 21
    assert [len(call) for call in applier.calls] == [1, 20]
    assert committer.writes == 21


async def test_a_bad_write_fails_only_its_own_caller_in_a_shared_round(
    applier: Applier, committer: GroupCommitter
) -> None:
    outcomes = Outcomes()
    names = ["a", "b", "bad", "c", "d"]
    async with trio.open_nursery() as nursery:
        gate = await hold_first_round(applier, committer, nursery, outcomes)
        for name in names:
            nursery.start_soon(outcomes.commit, committer, name)
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
    assert committer.rounds == 2  # "a".."d" and "bad" were one round, which failed
    bad = outcomes.results.pop("bad")
    assert isinstance(bad, StoreError) and "UNIQUE constraint failed" in str(bad)
    assert outcomes.results == {name: None for name in ["first", "a", "b", "c", "d"]}
    # the failed round was retried caller by caller: each good write applied exactly once
    assert sorted(applier.applied) == ["a", "b", "c", "d", "first"]
    assert all(len(call) == 1 for call in applier.calls[1:])
    assert committer.writes == 5


async def test_max_batch_splits_rounds() -> None:
    applier = Applier()
    committer = GroupCommitter(applier, max_batch=3)
    outcomes = Outcomes()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(committer.run)
            async with trio.open_nursery() as callers:
                gate = await hold_first_round(applier, committer, callers, outcomes)
                for i in range(7):
                    callers.start_soon(outcomes.commit, committer, f"w{i}")
                await trio.testing.wait_all_tasks_blocked()
                gate.set()
            committer.close()
    assert [len(call) for call in applier.calls] == [1, 3, 3, 1]
    assert sorted(applier.applied) == sorted(["first", *(f"w{i}" for i in range(7))])
    assert set(outcomes.results.values()) == {None}


async def test_close_flushes_queued_commits_then_the_writer_returns() -> None:
    applier = Applier()
    committer = GroupCommitter(applier)
    outcomes = Outcomes()
    writer_done = trio.Event()

    async def writer() -> None:
        await committer.run()
        writer_done.set()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            await trio.testing.wait_all_tasks_blocked()
            gate = await hold_first_round(applier, committer, nursery, outcomes)
            for i in range(5):
                nursery.start_soon(outcomes.commit, committer, f"w{i}")
            await trio.testing.wait_all_tasks_blocked()
            committer.close()
            with pytest.raises(StoreError, match="closed"):
                await committer.commit(write("late"))
            assert not writer_done.is_set()
            gate.set()
    assert writer_done.is_set()
    assert sorted(applier.applied) == sorted(["first", *(f"w{i}" for i in range(5))])
    assert set(outcomes.results.values()) == {None}


async def test_commit_after_close_is_refused(committer: GroupCommitter, applier: Applier) -> None:
    await committer.commit(write("before"))
    committer.close()
    with pytest.raises(StoreError):
        await committer.commit(write("after"))
    assert applier.applied == ["before"]


async def test_a_round_in_flight_completes_even_if_the_writer_is_cancelled() -> None:
    """Rounds are shielded: cancelling the writer mid-round still answers that round's callers
    with the truth (durable), rather than leaving them with a write of unknown fate."""
    applier = Applier()
    committer = GroupCommitter(applier)
    outcomes = Outcomes()
    writer_scope = trio.CancelScope()

    async def writer(task_status: trio.TaskStatus[None]) -> None:
        with writer_scope:
            await committer.run(task_status=task_status)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(writer)
            gate = await hold_first_round(applier, committer, nursery, outcomes)
            writer_scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert outcomes.results == {}
            gate.set()
    assert outcomes.results == {"first": None}
    assert applier.applied == ["first"]


async def test_commit_after_the_writer_stopped_does_not_wait_forever(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A commit made once the writer task is gone (its nursery was cancelled without `close`)
    can never become durable: it must be refused with StoreError, not left waiting forever
    (cf. actor.py: "no asker ever waits forever")."""
    applier = Applier()
    committer = GroupCommitter(applier)
    async with trio.open_nursery() as writer_nursery:
        await writer_nursery.start(committer.run)
        writer_nursery.cancel_scope.cancel()
    with trio.move_on_after(60) as guard:  # virtual time: returns at once when all are blocked
        with pytest.raises(StoreError):
            await committer.commit(write("orphan"))
    assert not guard.cancelled_caught, "commit waited forever for a writer that is gone"
