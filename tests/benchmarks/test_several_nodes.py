"""Several servers in one scenario (benchmarks/server.py, benchmarks/workers.py): the clients take
the URLs in turn across the worker processes' shares, Redis's CPU and memory are read from
`INFO`, and a scenario on a Redis store reports them beside the servers' CPU."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.cli import main
from benchmarks.options import server_options
from benchmarks.server import DemoSize, redis_usage, server_under_test
from benchmarks.workers import in_turn, url_of


@given(st.lists(st.integers(0, 20), min_size=1, max_size=6), st.integers(1, 4))
def test_the_clients_of_all_shares_take_the_urls_in_turn(counts: list[int], servers: int) -> None:
    urls = [f"ws://127.0.0.1:{8000 + i}/workflows/ws" for i in range(servers)]
    shares = in_turn(urls, counts)
    taken = [url_of(share, index) for share, count in zip(shares, counts, strict=True)
             for index in range(count)]
    assert taken == [urls[i % servers] for i in range(sum(counts))]


def test_redis_usage_reads_cpu_seconds_and_used_memory(redis_url: str) -> None:
    usage = redis_usage(redis_url)
    assert usage.cpu_s > 0 and usage.used_memory > 0
    with pytest.raises(OSError, match="Redis answered AUTH with '-ERR"):
        redis_usage(redis_url.replace("//", "//:wrong@"))  # this Redis has no password


@pytest.mark.parametrize(("argv", "refusal"), [
    (["--nodes", "2"], "--nodes 2 needs a redis://HOST:PORT/DB --store"),
    (["--url", "http://127.0.0.1:1", "--url", "http://127.0.0.1:2", "--server-pid", "1"],
     "--server-pid: one per --url, in the same order (got 1 for 2 --url)"),
])
def test_a_wrong_choice_of_servers_is_refused_before_any_starts(
    argv: list[str], refusal: str
) -> None:
    parser = argparse.ArgumentParser()
    server_options(parser)
    with pytest.raises(SystemExit, match="^" + re.escape(refusal)), \
            server_under_test(parser.parse_args(argv), DemoSize()):
        pass


@pytest.mark.parametrize("nodes", [1, 2])
def test_throughput_on_a_redis_store_reports_redis_beside_the_servers(
    redis_url: str, tmp_path: Path, nodes: int
) -> None:
    results = tmp_path / "results.jsonl"
    main(["throughput", "--runs", "6", "--concurrency", "3", "--warmup", "0", "--steps", "2",
          "--processes", "1", "--store", redis_url, "--nodes", str(nodes),
          "--results", str(results)])
    [entry] = [json.loads(line) for line in results.read_text().splitlines()]
    assert entry["parameters"]["redis"] == redis_url and entry["parameters"]["nodes"] == nodes
    figures = entry["figures"]
    assert figures["events"] == 6 * (2 + 2 * 4)
    assert figures["gaps"] == figures["duplicates"] == figures["not_completed"] == 0
    assert figures["server_metrics_delta"]["runcast_runs_started_total"] == 6  # over the nodes
    assert figures["redis_cpu_s"] >= 0 and figures["redis_cpu_us_per_event"] >= 0  # no timing
    assert figures["redis_used_memory_mib"] > 0
    assert len(figures.get("server_cpu_s_each", [None])) == nodes  # listed when several
