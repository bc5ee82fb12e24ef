"""Graph runs over HTTP: latency of one `POST /graph/run` at a time, then throughput of many.

Starts `runcast serve` as a separate process on a free loopback port (SQLite store in a temporary
directory), creates the code-review example graph, runs it on `SAMPLE_CODE` (threshold 7,
max_iterations 3) `--sequential` times one after the other (p50/p99 latency), then `--concurrent`
times at once (runs/s). Every answer is checked: completed, quality score 8.5.

    python -m benchmarks.graph_runs --sequential 200 --concurrent 500
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from actors.workflows.examples.code_review import SAMPLE_CODE, code_review_graph
from benchmarks.server import free_port, wait_for_health


async def run_once(http: httpx.AsyncClient, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    answer = (await http.post("/graph/run", json=body)).json()
    if answer["status"] != "completed" or answer["final_state"]["quality_score"] != 8.5:
        raise AssertionError(f"unexpected result: {answer}")
    return time.perf_counter() - started


async def measure(base_url: str, sequential: int, concurrent: int) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        graph = (await http.post("/graph/create", json=code_review_graph())).json()
        body = {
            "graph_id": graph["graph_id"],
            "initial_state": {"code": SAMPLE_CODE, "threshold": 7, "max_iterations": 3},
        }
        latencies = sorted([await run_once(http, body) for _ in range(sequential)])
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        print(f"{sequential} sequential /graph/run: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(concurrent):
                nursery.start_soon(run_once, http, body)
        wall = time.perf_counter() - started
        print(f"{concurrent} concurrent /graph/run: {wall:.2f} s = {concurrent / wall:.0f} runs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=500)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        runcast = Path(sys.executable).parent / "runcast"
        server = subprocess.Popen(
            [str(runcast), "serve", "--port", str(port), "--store", f"sqlite:{tmp}/graphs.db",
             "--log-level", "WARNING"]
        )
        try:
            wait_for_health(f"http://127.0.0.1:{port}")
            trio.run(measure, f"http://127.0.0.1:{port}", args.sequential, args.concurrent)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
