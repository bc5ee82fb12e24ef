"""`GET /metrics`: the server's figures in the Prometheus text format.

The runtime's counters (`actors.stats`) and the web layer's own (`WebStats`: frames sent, open
WebSockets) are plain integers; a prometheus-client collector reads them only when scraped, with
the gauges (live runs, live subscribers) computed then, so serving events pays nothing for
metrics. The process collector adds the server's CPU seconds and resident memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import attrs
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from quart import Blueprint, Response

from actors import Runtime
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


def metrics_blueprint(runtime: Runtime, web: WebStats) -> Blueprint:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuncastCollector(runtime, web))
    ProcessCollector(registry=registry)
    api = Blueprint("metrics", __name__)

    @api.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    return api
