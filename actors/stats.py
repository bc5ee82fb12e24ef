"""What the runtime counts as it works: plain integers and a fixed-bucket histogram.

Counting must cost the hot path next to nothing, so nothing here takes a lock, formats a label
or allocates: a run actor adds 1 to an int per event. Exporters (the web layer's `/metrics`) read
these numbers when they are scraped; gauges such as the live runs or the current subscribers are
computed then from the registry, not kept here.
"""

from __future__ import annotations

import bisect

import attrs

from actors.events import RunStatus

COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@attrs.define
class Histogram:
    """Observations counted per bucket; `counts[i]` holds those <= `bounds[i]` and above the
    bound before it, the last count those above every bound."""

    bounds: tuple[float, ...]
    counts: list[int]
    total: float = 0.0

    @classmethod
    def with_bounds(cls, bounds: tuple[float, ...]) -> Histogram:
        return cls(bounds, [0] * (len(bounds) + 1))

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations <= it) per bucket, the last bound being infinity."""
        running, buckets = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets


@attrs.define
class RuntimeStats:
    runs_started: int = 0
    runs_finished: dict[RunStatus, int] = attrs.Factory(
        lambda: {status: 0 for status in RunStatus if status.finished}
    )
    events_appended: int = 0
    subscriptions: int = 0  # follows opened (`Runtime.follow`), replays of finished runs included
    commit_seconds: Histogram = attrs.Factory(lambda: Histogram.with_bounds(COMMIT_BUCKETS))
