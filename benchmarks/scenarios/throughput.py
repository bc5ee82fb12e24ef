"""`throughput`: N runs, C at a time, each started and read to its end over its own WebSocket.

Clients are spread over worker processes (runs and concurrency split between them). Figures:
events/s delivered, server CPU per event (from /proc when the pid is known), client CPU per
event, start latency (start-workflow sent -> first event), event delay (for events that carry
`data.emitted_at`), gaps and duplicates (must be 0), and the server's /metrics before and after.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import trio

from benchmarks.report import Percentiles
from benchmarks.server import Server, metrics_delta
from benchmarks.workers import run_workers, split
from benchmarks.wsclient import run_once

JOB = "benchmarks.scenarios.throughput:client_job"


async def client_job(share: dict[str, Any], tick: Callable[[int], None]) -> dict[str, Any]:
    limiter = trio.CapacityLimiter(share["concurrency"])
    totals: dict[str, Any] = {"runs": 0, "events": 0, "gaps": 0, "duplicates": 0,
                              "not_completed": 0, "first_event_s": [], "delays_s": []}

    async def one() -> None:
        async with limiter:
            trace = await run_once(share["url"], share["workflow_id"])
        totals["runs"] += 1
        totals["events"] += trace.events
        totals["gaps"] += trace.cursor.gaps
        totals["duplicates"] += trace.cursor.duplicates
        totals["not_completed"] += trace.terminal != "WorkflowCompleted"
        if trace.first_event_s is not None:
            totals["first_event_s"].append(trace.first_event_s)
        totals["delays_s"].extend(trace.delays_s)
        tick(1)

    async with trio.open_nursery() as nursery:
        for _ in range(share["runs"]):
            nursery.start_soon(one)
    return totals


def measure(
    server: Server, workflow_id: str, runs: int, concurrency: int, processes: int
) -> dict[str, Any]:
    """One measurement at one concurrency; returns its figures."""
    run_shares = split(runs, processes)
    concurrency_shares = split(concurrency, len(run_shares))
    shares = [
        {"url": server.ws_url, "workflow_id": workflow_id, "runs": r, "concurrency": c}
        for r, c in zip(run_shares, concurrency_shares, strict=False)
    ]
    metrics_before, cpu_before = server.metrics(), server.cpu_seconds()
    started = time.perf_counter()
    outcomes = run_workers(JOB, shares, total=runs, unit="runs", label=f"throughput c={concurrency}")
    wall = time.perf_counter() - started
    cpu_after, metrics_after = server.cpu_seconds(), server.metrics()
    results = [o.result for o in outcomes]
    events = sum(r["events"] for r in results)
    figures: dict[str, Any] = {
        "runs": sum(r["runs"] for r in results),
        "events": events,
        "wall_s": round(wall, 3),
        "events_per_s": round(events / wall, 1),
        "gaps": sum(r["gaps"] for r in results),
        "duplicates": sum(r["duplicates"] for r in results),
        "not_completed": sum(r["not_completed"] for r in results),
        "client_cpu_s": round(sum(o.cpu_seconds for o in outcomes), 3),
        "client_cpu_us_per_event": round(sum(o.cpu_seconds for o in outcomes) / events * 1e6, 1),
    }
    if cpu_before is not None and cpu_after is not None:
        server_cpu = cpu_after - cpu_before
        figures["server_cpu_s"] = round(server_cpu, 3)
        figures["server_cpu_us_per_event"] = round(server_cpu / events * 1e6, 1)
        figures["server_core_share"] = round(server_cpu / wall, 3)
    first = Percentiles.of(x for r in results for x in r["first_event_s"])
    delays = Percentiles.of(x for r in results for x in r["delays_s"])
    figures["start_latency"] = first.in_ms() if first else None
    figures["event_delay"] = delays.in_ms() if delays else None
    delta = metrics_delta(metrics_before, metrics_after)
    if delta is not None:
        figures["server_metrics_delta"] = delta
    return figures
