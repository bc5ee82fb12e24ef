"""`GET /metrics`: the server's figures in the Prometheus text format; `GET /metrics.json`: the
same figures as one JSON object, for pages (the dashboard) that read JSON.

The runtime's counters (`actors.stats`) and the web layer's own (`WebStats`: frames sent, open
WebSockets) are plain integers; a prometheus-client collector reads them only when scraped, with
the gauges (live runs, live subscribers) computed then, so serving events pays nothing for
metrics. The process collector adds the server's CPU seconds and resident memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from quart import Blueprint, Response, jsonify

from actors import Runtime
from actors.store import SharedStore
from web.asgi_websocket import WebSocketLike


@attrs.define
class WebStats:
    frames_sent: int = 0  # run events and control frames, over both WebSocket protocols
    websockets_opened: int = 0
    websockets_open: int = 0


@attrs.frozen
class CountedWebSocket:
    """A server-side WebSocket whose sent frames count in `stats`."""

    websocket: WebSocketLike
    stats: WebStats

    async def send(self, data: str) -> None:
        await self.websocket.send(data)
        self.stats.frames_sent += 1

    async def send_many(self, texts: Sequence[str]) -> None:
        await self.websocket.send_many(texts)
        self.stats.frames_sent += len(texts)

    async def receive(self) -> str | bytes:
        return await self.websocket.receive()

    async def close(self, code: int, reason: str = "") -> None:
        await self.websocket.close(code, reason)


@attrs.frozen(eq=False)
class RuncastCollector:
    runtime: Runtime
    web: WebStats

    def collect(self) -> Iterator[Metric]:
        stats = self.runtime.stats
        yield CounterMetricFamily(
            "runcast_runs_started", "Runs started (their first event is durable).",
            value=stats.runs_started,
        )
        finished = CounterMetricFamily(
            "runcast_runs_finished", "Runs finished, by final status.", labels=["status"]
        )
        for status, count in stats.runs_finished.items():
            finished.add_metric([status.value], count)
        yield finished
        yield GaugeMetricFamily(
            "runcast_live_runs", "Runs live on this node.", value=self.runtime.live_runs
        )
        yield CounterMetricFamily(
            "runcast_events_appended", "Events appended (durable, then published).",
            value=stats.events_appended,
        )
        yield CounterMetricFamily(
            "runcast_subscriptions", "Follows opened (starts, reconnects, replays).",
            value=stats.subscriptions,
        )
        yield GaugeMetricFamily(
            "runcast_live_subscribers", "Live feeds of running runs.",
            value=self.runtime.live_subscribers,
        )
        yield CounterMetricFamily(
            "runcast_frames_sent", "WebSocket frames sent.", value=self.web.frames_sent
        )
        yield CounterMetricFamily(
            "runcast_websockets_opened", "WebSocket connections accepted.",
            value=self.web.websockets_opened,
        )
        yield GaugeMetricFamily(
            "runcast_websockets_open", "WebSocket connections open.", value=self.web.websockets_open
        )
        commits = stats.commit_seconds
        yield HistogramMetricFamily(
            "runcast_store_commit_seconds",
            "Time from an event's commit call until it is durable (group commit included).",
            buckets=[(_le(bound), count) for bound, count in commits.cumulative()],
            sum_value=commits.total,
        )


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


PROCESS_FIGURES = {  # the JSON name of each ProcessCollector sample /metrics.json gives
    "process_cpu_seconds_total": "cpu_seconds",
    "process_resident_memory_bytes": "resident_memory_bytes",
}


def figures(runtime: Runtime, web: WebStats, process: ProcessCollector) -> dict[str, Any]:
    """The figures of `/metrics` as one JSON object, read from the same counters as
    `RuncastCollector` and the same process collector; `node` is the node's id in a store
    several nodes share, else None."""
    stats = runtime.stats
    commits = stats.commit_seconds
    buckets = commits.cumulative()
    store = runtime.store
    answer: dict[str, Any] = {
        "node": store.node_id if isinstance(store, SharedStore) else None,
        "time": time.time(),
        "live_runs": runtime.live_runs,
        "runs_started": stats.runs_started,
        "runs_finished": {status.value: n for status, n in stats.runs_finished.items()},
        "events_appended": stats.events_appended,
        "subscriptions": stats.subscriptions,
        "live_subscribers": runtime.live_subscribers,
        "frames_sent": web.frames_sent,
        "websockets_opened": web.websockets_opened,
        "websockets_open": web.websockets_open,
        "store_commit_seconds": {
            "count": buckets[-1][1],
            "sum": commits.total,
            "buckets": [["+Inf" if b == math.inf else b, count] for b, count in buckets],
        },
        **dict.fromkeys(PROCESS_FIGURES.values()),  # null where the platform has none
    }
    for family in process.collect():
        for sample in family.samples:
            if sample.name in PROCESS_FIGURES:
                answer[PROCESS_FIGURES[sample.name]] = sample.value
    return answer


def metrics_blueprint(runtime: Runtime, web: WebStats) -> Blueprint:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuncastCollector(runtime, web))
    process = ProcessCollector(registry=registry)
    api = Blueprint("metrics", __name__)

    @api.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    @api.get("/metrics.json")
    async def metrics_json() -> Response:
        return jsonify(figures(runtime, web, process))

    return api
