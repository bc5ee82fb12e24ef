"""GET /metrics (web/metrics.py) of a real server: Prometheus text whose counters follow the runs,
the subscribers and the frames that went through the server."""

from __future__ import annotations

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.clients import ws_client
from tests.conftest import RunningServer, StartServer

DEMO = "content-creation-workflow"
DEMO_EVENTS = 42


async def scrape(base_url: str) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return samples


async def test_metrics_count_runs_events_frames_and_sockets(server: RunningServer) -> None:
    before = await scrape(server.base_url)
    with trio.fail_after(20):
        async with ws_client(server.ws_url) as client:
            await client.start(DEMO)
            await client.recv_until_terminal()
            during = await scrape(server.base_url)
    after = await scrape(server.base_url)
    assert before["runcast_runs_started_total"] == 0
    assert during["runcast_websockets_open"] == 1 and after["runcast_websockets_open"] == 0
    assert after["runcast_websockets_opened_total"] == 1
    assert after["runcast_runs_started_total"] == 1
    assert after["runcast_runs_finished_total{status=COMPLETED}"] == 1
    assert after["runcast_events_appended_total"] == DEMO_EVENTS
    assert after["runcast_subscriptions_total"] == 1
    assert after["runcast_frames_sent_total"] == 1 + DEMO_EVENTS  # `connected`, then the events
    assert after["runcast_live_runs"] == 0
    commits = after["runcast_store_commit_seconds_count"]
    assert 1 <= commits <= DEMO_EVENTS  # one per batch the run's writer committed
    assert after["runcast_store_commit_seconds_bucket{le=+Inf}"] == commits
    assert after["process_cpu_seconds_total"] > 0 and after["process_resident_memory_bytes"] > 0


async def test_live_runs_and_subscribers_are_counted_while_a_run_goes_on(
    start_server: StartServer,
) -> None:
    server = await start_server(demo_step_delay=0.5)
    with trio.fail_after(20):
        async with ws_client(server.ws_url) as starter, ws_client(server.ws_url) as watcher:
            started = await starter.start(DEMO)
            await watcher.send({"action": "reconnect", "run_id": started["run_id"]})
            while (await watcher.recv())["event"] != "subscribed":
                pass
            live = await scrape(server.base_url)
    assert live["runcast_live_runs"] == 1
    assert live["runcast_live_subscribers"] == 2
    assert live["runcast_subscriptions_total"] == 2


async def test_metrics_need_the_token_when_the_server_has_one(start_server: StartServer) -> None:
    server = await start_server(token="s3cret")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        refused = await http.get("/metrics")
        allowed = await http.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert refused.status_code == 401
    assert allowed.status_code == 200 and "runcast_live_runs" in allowed.text
