"""Client work spread over several processes, so that the client is not what is measured.

A scenario names an async job by import path (`"benchmarks.scenarios.throughput:client_job"`)
and gives each worker process its share as a JSON-able dict. Each worker runs the job under
`trio.run` with a `tick(n)` callback that adds to a counter shared with the parent (the progress
bar reads it), and sends back the job's result plus the CPU seconds the worker used. Workers
start with the "spawn" method: no state of the parent leaks into them. When there are several
servers, `in_turn` and `url_of` spread the clients of all the shares over their URLs in turn.
"""

from __future__ import annotations

import importlib
import itertools
import multiprocessing
import queue
import time
from collections.abc import Awaitable, Callable, Sequence
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import attrs
import trio

from benchmarks.progress import ProgressBar

Job = Callable[[dict[str, Any], Callable[[int], None]], Awaitable[dict[str, Any]]]


@attrs.frozen
class WorkerOutcome:
    result: dict[str, Any]
    cpu_seconds: float  # of the job alone, not the process's start-up


def _load(path: str) -> Job:
    module, _, name = path.partition(":")
    job: Job = getattr(importlib.import_module(module), name)
    return job


def _worker(path: str, share: dict[str, Any], counter: Synchronized, results: Any) -> None:
    job = _load(path)

    def tick(count: int = 1) -> None:
        with counter.get_lock():
            counter.value += count

    before = time.process_time()
    try:
        result = trio.run(job, share, tick)
    except BaseException as error:  # reported to the parent, which fails the scenario
        results.put({"error": f"{type(error).__name__}: {error}"})
        raise
    results.put({"result": result, "cpu_seconds": time.process_time() - before})


class WorkerFailed(RuntimeError):
    pass


def run_workers(
    path: str, shares: list[dict[str, Any]], *, total: int, unit: str, label: str
) -> list[WorkerOutcome]:
    """Run `path` once per share, each in its own process; show progress toward `total` ticks;
    return the outcomes once every worker is done. Raises WorkerFailed naming the first error."""
    context = multiprocessing.get_context("spawn")
    counter: Synchronized = context.Value("q", 0)  # type: ignore[assignment]  # multiprocessing's Value is typed loosely
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(path, share, counter, results), daemon=True)
        for share in shares
    ]
    bar = ProgressBar(label, total, unit)
    for process in processes:
        process.start()
    outcomes: list[WorkerOutcome] = []
    errors: list[str] = []
    while len(outcomes) + len(errors) < len(processes):
        bar.show(counter.value)
        try:
            message = results.get(timeout=0.2)
        except queue.Empty:  # nothing finished in this interval
            if not any(p.is_alive() for p in processes) and results.empty():
                errors.append("a worker process died without a result")
            continue
        if "error" in message:
            errors.append(message["error"])
        else:
            outcomes.append(WorkerOutcome(message["result"], message["cpu_seconds"]))
    bar.finish(counter.value)
    for process in processes:
        process.join(timeout=10)
    if errors:
        raise WorkerFailed("; ".join(errors))
    return outcomes


def split(total: int, parts: int) -> list[int]:
    """`total` as `parts` near-equal shares, none empty (fewer parts if total is small)."""
    parts = max(1, min(parts, total))
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def in_turn(urls: Sequence[str], counts: Sequence[int]) -> list[dict[str, Any]]:
    """For shares of `counts` clients each, what each share needs so that all their clients take
    `urls` in turn: the URLs and the number of the share's first client (see `url_of`)."""
    firsts = itertools.accumulate(counts[:-1], initial=0)
    return [{"urls": list(urls), "first": first} for first in firsts]


def url_of(share: dict[str, Any], index: int) -> str:
    """The URL of the share's `index`-th client (from 0), of a share made with `in_turn`."""
    urls: list[str] = share["urls"]
    first: int = share["first"]
    return urls[(first + index) % len(urls)]
