"""`tune_interpreter()`: the CPython settings `runcast serve` runs with, and why.

- GIL switch interval 0.5 ms (default 5 ms). The SQLite store commits in a worker thread; with
  the default the event loop, woken by a finished commit, could wait that long for the GIL each
  time. Measured with `runcast-bench hold` (3,000 live runs): delivery delay p50 16 -> 2.2 ms,
  p99 503 -> 127 ms.
- Garbage-collector thresholds (50,000, 20, 100) (default (700, 10, 10)). Every live run is a
  few hundred long-lived objects (actor, tasks, channels, cancel scopes), and with the default a
  young collection every 700 allocations led to full collections over all of them: with 10,000
  live runs, `python -m benchmarks.slow_events --runs 10000 --interval 5 --store sqlite` spent
  399 us of CPU per event, and 229 us with these thresholds. Reference counting still frees
  almost everything at once; only cyclic garbage waits longer.
"""

from __future__ import annotations

import gc
import sys

GIL_SWITCH_INTERVAL = 0.0005
GC_THRESHOLDS = (50_000, 20, 100)


def tune_interpreter() -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)
