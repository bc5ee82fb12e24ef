"""actors/stats.py: the fixed-bucket histogram, and the runtime's counters as runs go by."""

from __future__ import annotations

import trio
from hypothesis import given
from hypothesis import strategies as st

from actors import RunStatus, open_runtime, open_store
from actors.stats import COMMIT_BUCKETS, Histogram
from tests.actors.helpers import catalog_of, chatty_workflow, failing_workflow, follow_all


def test_an_observation_lands_in_the_first_bucket_whose_bound_it_does_not_exceed() -> None:
    histogram = Histogram.with_bounds((1.0, 2.0))
    for value in (0.5, 1.0, 1.5, 2.0, 7.0):
        histogram.observe(value)
    assert histogram.counts == [2, 2, 1]
    assert histogram.total == 12.0
    assert histogram.cumulative() == [(1.0, 2), (2.0, 4), (float("inf"), 5)]


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False)))
def test_cumulative_counts_match_a_direct_count(values: list[float]) -> None:
    histogram = Histogram.with_bounds(COMMIT_BUCKETS)
    for value in values:
        histogram.observe(value)
    for bound, count in histogram.cumulative():
        assert count == sum(v <= bound for v in values)


async def test_the_runtime_counts_runs_events_and_follows() -> None:
    catalog = catalog_of(chatty_workflow("chatty", events=3), failing_workflow("failing"))
    async with open_store("memory") as store, open_runtime(store, catalog) as runtime:
        with trio.fail_after(10):
            done = await runtime.start("chatty")
            chatty = await follow_all(runtime, done.run_id)
            broken = await runtime.start("failing")
            failing = await follow_all(runtime, broken.run_id)
            await runtime._registry.wait_until_idle()
        stats = runtime.stats
    assert stats.runs_started == 2
    assert stats.runs_finished == {
        RunStatus.COMPLETED: 1,
        RunStatus.ERROR: 1,
        RunStatus.CANCELLED: 0,
    }
    assert stats.events_appended == len(chatty) + len(failing)
    assert stats.subscriptions == 2
    commits = stats.commit_seconds.cumulative()[-1][1]
    assert 1 <= commits <= stats.events_appended  # one per batch the runs' writers committed
