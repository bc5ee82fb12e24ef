"""GET /metrics (web/metrics.py) of a real server: Prometheus text whose counters follow the runs,
the subscribers and the frames that went through the server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
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
        refused_json = await http.get("/metrics.json")
        allowed_json = await http.get("/metrics.json", headers={"Authorization": "Bearer s3cret"})
    assert refused.status_code == 401
    assert allowed.status_code == 200 and "runcast_live_runs" in allowed.text
    assert refused_json.status_code == 401
    assert allowed_json.status_code == 200 and allowed_json.json()["live_runs"] == 0


# -- /metrics.json -------------------------------------------------------------------------------


async def scrape_json(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.get("/metrics.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    body: dict[str, Any] = answer.json()
    return body


def as_text_samples(figures: dict[str, Any]) -> dict[str, float]:
    """The runcast samples of /metrics that a /metrics.json answer stands for."""
    samples = {
        "runcast_live_runs": figures["live_runs"],
        "runcast_runs_started_total": figures["runs_started"],
        "runcast_events_appended_total": figures["events_appended"],
        "runcast_subscriptions_total": figures["subscriptions"],
        "runcast_live_subscribers": figures["live_subscribers"],
        "runcast_frames_sent_total": figures["frames_sent"],
        "runcast_websockets_opened_total": figures["websockets_opened"],
        "runcast_websockets_open": figures["websockets_open"],
        "runcast_store_commit_seconds_count": figures["store_commit_seconds"]["count"],
        "runcast_store_commit_seconds_sum": figures["store_commit_seconds"]["sum"],
    }
    for status, count in figures["runs_finished"].items():
        samples[f"runcast_runs_finished_total{{status={status}}}"] = count
    for bound, count in figures["store_commit_seconds"]["buckets"]:
        samples[f"runcast_store_commit_seconds_bucket{{le={bound}}}"] = count
    return samples


async def test_metrics_json_moves_as_a_run_runs_and_agrees_with_the_text(
    start_server: StartServer,
) -> None:
    server = await start_server(demo_step_delay=0.2)
    before = await scrape_json(server.base_url)
    assert before["node"] is None  # an SQLite store: one node
    assert before["runs_started"] == 0 and before["events_appended"] == 0
    assert before["runs_finished"] == {"COMPLETED": 0, "ERROR": 0, "CANCELLED": 0}
    with trio.fail_after(20):
        async with ws_client(server.ws_url) as client:
            await client.start(DEMO)
            await client.recv()  # the first step's progress: the run is under way
            during = await scrape_json(server.base_url)
            await client.recv_until_terminal()
    assert during["live_runs"] == 1 and during["websockets_open"] == 1
    assert during["live_subscribers"] == 1
    assert 0 < during["events_appended"] < DEMO_EVENTS
    assert during["time"] >= before["time"]
    with trio.fail_after(5):  # the socket's close is counted once the server saw it
        while (after := await scrape_json(server.base_url))["websockets_open"]:
            await trio.sleep(0.01)
    text = await scrape(server.base_url)
    assert after["runs_finished"]["COMPLETED"] == 1 and after["live_runs"] == 0
    assert after["events_appended"] == DEMO_EVENTS
    commits = after["store_commit_seconds"]
    assert commits["buckets"][-1] == ["+Inf", commits["count"]] and commits["count"] >= 1
    assert [bound for bound, _ in commits["buckets"][:-1]] == sorted(
        bound for bound, _ in commits["buckets"][:-1]
    )
    for name, value in as_text_samples(after).items():
        assert text[name] == pytest.approx(value), name
    assert text["process_resident_memory_bytes"] == pytest.approx(
        after["resident_memory_bytes"], rel=0.2
    )
    assert 0 < after["cpu_seconds"] <= text["process_cpu_seconds_total"]


async def test_metrics_json_names_the_node_on_a_shared_store(
    start_server: StartServer, redis_url: str
) -> None:
    server = await start_server(store=redis_url, node_id="node-7")
    assert (await scrape_json(server.base_url))["node"] == "node-7"
