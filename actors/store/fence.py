"""The fence as one rule for every store: whether a commit's run writes fit the runs' records.

A store applies the writes of a commit in order, each against the record the writes before it
left (`actors.store.base` says what each write needs). `check` walks them so and gives the
records as the commit leaves them, or raises `WriteRefused` naming the first write that does not
fit. The memory store applies what it gives; the SQLite store checks the same conditions in its
UPDATE statements, and asks `check` only to name what was refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from actors.events import RunStatus
from actors.store.base import (
    AppendEvents,
    ClaimRun,
    CreateRun,
    FinishRun,
    RunRecord,
    Write,
    WriteRefused,
)

RunWrite = AppendEvents | FinishRun | ClaimRun


def check(writes: Sequence[Write], current: Callable[[str], RunRecord | None]) -> dict[str, RunRecord]:
    """The records of the runs `writes` touch, as the writes leave them; `current(run_id)` is a
    run's record before the commit. Raises WriteRefused."""
    runs: dict[str, RunRecord | None] = {}

    def record(run_id: str) -> RunRecord | None:
        if run_id not in runs:
            runs[run_id] = current(run_id)
        return runs[run_id]

    for write in writes:
        if isinstance(write, CreateRun):
            run_id = write.record.info.run_id
            if record(run_id) is not None:
                raise WriteRefused(f"run {run_id} already exists")
            runs[run_id] = write.record
        elif isinstance(write, AppendEvents | FinishRun | ClaimRun):
            before = record(write.run_id)
            problem = refusal(write, before)
            if problem is not None:
                raise WriteRefused(problem)
            assert before is not None
            runs[write.run_id] = applied(write, before)
    return {run_id: r for run_id, r in runs.items() if r is not None}


def first_refusal(
    writes: Sequence[Write], current: Callable[[str], RunRecord | None]
) -> str | None:
    """The fence's words for the first of `writes` that does not fit, or None: how a store
    that checks the fence its own way (in SQL, in a Redis function) names what it refused."""
    try:
        check(writes, current)
    except WriteRefused as refused:
        return str(refused)
    return None


def runs_written(writes: Sequence[Write]) -> set[str]:
    """The runs `writes` create or write."""
    return {
        write.record.info.run_id if isinstance(write, CreateRun) else write.run_id
        for write in writes
        if isinstance(write, CreateRun | AppendEvents | FinishRun | ClaimRun)
    }


def refusal(write: RunWrite, record: RunRecord | None) -> str | None:
    """Why `write` does not fit the run's `record`, or None."""
    run_id = write.run_id
    if record is None:
        return f"run {run_id} does not exist"
    if record.status is not RunStatus.RUNNING:
        return f"run {run_id} is already finished ({record.status.value})"
    if isinstance(write, ClaimRun):
        if write.epoch != record.epoch + 1:
            return (
                f"run {run_id} cannot be claimed for epoch {write.epoch}:"
                f" its writer is of epoch {record.epoch}"
            )
        return None
    if write.epoch != record.epoch:
        return (
            f"run {run_id} is written by epoch {record.epoch}, not by epoch {write.epoch}"
            " (an older incarnation of the run)"
        )
    if isinstance(write, AppendEvents):
        if write.first != record.event_count:
            return (
                f"event {write.first} of run {run_id} is not next"
                f" ({record.event_count})"
            )
    elif write.event_count != record.event_count:
        return (
            f"run {run_id} cannot finish after {write.event_count} events:"
            f" it has {record.event_count}"
        )
    return None


def applied(write: RunWrite, record: RunRecord) -> RunRecord:
    """`record` once `write`, which fits it, is applied."""
    if isinstance(write, AppendEvents):
        return attrs.evolve(record, event_count=record.event_count + len(write.frames))
    if isinstance(write, FinishRun):
        return attrs.evolve(record, status=write.status, finished_at=write.finished_at)
    return attrs.evolve(record, epoch=write.epoch)
