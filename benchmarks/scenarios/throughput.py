"""`throughput`: N runs, C at a time, each started and read to its end over its own WebSocket.

Clients are spread over worker processes (runs and concurrency split between them), and the
runs over the servers in turn when there are several. Figures: events/s delivered, server CPU
per event (from /proc when the pids are known; added up, and each server's), Redis's CPU per
event and its used_memory (when its URL is known), client CPU per event, start latency
(start-workflow sent -> first event), event delay (for events that carry `data.emitted_at`),
gaps and duplicates (must be 0), and the servers' /metrics before and after. With dashboards
open (`benchmarks.dashboards`), the browser's CPU and the GET /runs its pages had answered over
the measurement.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import trio

from benchmarks.dashboards import Dashboards, dashboard_figures
from benchmarks.report import Percentiles
from benchmarks.server import Servers, metrics_delta, usage_figures
from benchmarks.workers import in_turn, run_workers, split, url_of
from benchmarks.wsclient import run_once

JOB = "benchmarks.scenarios.throughput:client_job"


async def client_job(share: dict[str, Any], tick: Callable[[int], None]) -> dict[str, Any]:
    limiter = trio.CapacityLimiter(share["concurrency"])
    totals: dict[str, Any] = {"runs": 0, "events": 0, "gaps": 0, "duplicates": 0,
                              "not_completed": 0, "first_event_s": [], "delays_s": []}

    async def one(index: int) -> None:
        async with limiter:
            trace = await run_once(url_of(share, index), share["workflow_id"])
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
        for index in range(share["runs"]):
            nursery.start_soon(one, index)
    return totals


def measure(
    servers: Servers, workflow_id: str, runs: int, concurrency: int, processes: int,
    dashboards: Dashboards | None = None,
) -> dict[str, Any]:
    """One measurement at one concurrency, with `dashboards` watching if given; returns its
    figures."""
    run_shares = split(runs, processes)
    concurrency_shares = split(concurrency, len(run_shares))
    shares = [
        {"workflow_id": workflow_id, "runs": r, "concurrency": c, **urls}
        for r, c, urls in zip(run_shares, concurrency_shares, in_turn(servers.ws_urls, run_shares),
                              strict=False)
    ]
    metrics_before, usage_before = servers.metrics(), servers.usage()
    watched_before = dashboards.usage() if dashboards else None
    started = time.perf_counter()
    outcomes = run_workers(JOB, shares, total=runs, unit="runs", label=f"throughput c={concurrency}")
    wall = time.perf_counter() - started
    watched_after = dashboards.usage() if dashboards else None
    usage_after, metrics_after = servers.usage(), servers.metrics()
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
    figures.update(usage_figures(usage_before, usage_after, events))
    if watched_before and watched_after:
        figures.update(dashboard_figures(watched_before, watched_after, wall, events))
    first = Percentiles.of(x for r in results for x in r["first_event_s"])
    delays = Percentiles.of(x for r in results for x in r["delays_s"])
    figures["start_latency"] = first.in_ms() if first else None
    figures["event_delay"] = delays.in_ms() if delays else None
    delta = metrics_delta(metrics_before, metrics_after)
    if delta is not None:
        figures["server_metrics_delta"] = delta
    return figures
