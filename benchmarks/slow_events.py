"""What one event of a slow run costs the runtime, no sockets: many live runs, each emitting one
event every `--interval` seconds, for `--seconds` seconds after they all started.

`inprocess` measures runs emitting back to back, where the runtime batches; this measures the
other extreme, the `hold` scenario's load without the web layer: every event is alone (a timer
wake-up, the body, the run's writer, a store commit, publishing), so its fixed cost shows.

    python -m benchmarks.slow_events --runs 3000 --interval 2 --seconds 10 --store memory
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import trio

from actors import WorkflowCatalog, open_runtime, sleep
from actors.events import STEP_PROGRESS, RunInfo
from actors.workflows.catalog import Emit
from benchmarks.scenarios.inprocess import store_of
from web.tuning import tune_interpreter


class Ticking:
    id = "ticking"
    name = "Ticking"
    description = "one progress event every interval, until cancelled"

    def __init__(self, interval: float) -> None:
        self.interval = interval

    async def execute(self, run: RunInfo, emit: Emit) -> dict[str, Any]:
        while True:
            await sleep(self.interval)
            await emit(STEP_PROGRESS, {"step_name": "tick", "step_index": 0, "content": "tick"})


async def measure(runs: int, interval: float, seconds: float, store_kind: str) -> str:
    catalog = WorkflowCatalog()
    catalog.add(Ticking(interval))
    async with store_of(store_kind) as store, open_runtime(store, catalog) as runtime:
        for _ in range(runs):
            await runtime.start(Ticking.id)
        await trio.sleep(interval * 1.5)  # every run has ticked once: the load is steady
        cpu, started = time.process_time(), time.perf_counter()
        events = runtime.stats.events_appended
        await trio.sleep(seconds)
        wall = time.perf_counter() - started
        cpu, events = time.process_time() - cpu, runtime.stats.events_appended - events
        await runtime.shutdown(0)
    return (
        f"{runs} runs, one event every {interval:g} s each, {store_kind} store: "
        f"{events / wall:,.0f} events/s, {cpu / wall * 100:.0f}% of a core, "
        f"{cpu / max(events, 1) * 1e6:.0f} us of CPU per event"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    args = parser.parse_args()
    tune_interpreter()  # as `runcast serve` does
    print(trio.run(measure, args.runs, args.interval, args.seconds, args.store))


if __name__ == "__main__":
    main()
