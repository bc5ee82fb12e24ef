"""Quick throughput and memory check: concurrent demo runs over real WebSockets.

Starts `runcast serve --demo-step-delay 0` as a separate process on a free loopback port, keeps
`--concurrency` demo runs going at once over WebSocket until `--runs` have finished, and reports
events/s delivered to the clients, the server's CPU time per event (from /proc), and the server's
RSS growth per finished run. Every run's events are checked for gaps on the way.

    python -m benchmarks.quick_throughput --runs 500 --concurrency 50
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import trio
from trio_websocket import open_websocket_url

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE


def wait_for_health(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def one_run(url: str, expected_events: int) -> int:
    async with open_websocket_url(url) as ws:
        await ws.get_message()  # connected
        await ws.send_message(
            json.dumps({"action": "start-workflow", "workflow_id": "content-creation-workflow"})
        )
        index = -1
        while True:
            event = json.loads(await ws.get_message())
            if event["event_index"] != index + 1:
                raise AssertionError(f"gap: {index} then {event['event_index']}")
            index = event["event_index"]
            if event["event"] in ("WorkflowCompleted", "WorkflowError"):
                break
    if index + 1 != expected_events:
        raise AssertionError(f"run ended after {index + 1} events, expected {expected_events}")
    return index + 1


async def drive(url: str, runs: int, concurrency: int, expected_events: int) -> int:
    limiter = trio.CapacityLimiter(concurrency)
    received = 0

    async def worker() -> None:
        nonlocal received
        async with limiter:
            events = await one_run(url, expected_events)
        received += events

    async with trio.open_nursery() as nursery:
        for _ in range(runs):
            nursery.start_soon(worker)
    return received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--progress", type=int, default=2)
    args = parser.parse_args()
    expected = 2 + args.steps * (3 + args.progress)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        store = "memory" if args.store == "memory" else f"sqlite:{tmp}/bench.db"
        runcast = Path(sys.executable).parent / "runcast"
        server = subprocess.Popen(
            [str(runcast), "serve", "--port", str(port), "--store", store,
             "--demo-step-delay", "0", "--demo-steps", str(args.steps),
             "--demo-progress", str(args.progress), "--log-level", "WARNING"],
        )
        try:
            wait_for_health(port)
            url = f"ws://127.0.0.1:{port}/workflows/ws"
            trio.run(drive, url, args.concurrency, args.concurrency, expected)  # warm-up
            rss_before, cpu_before = rss_bytes(server.pid), cpu_seconds(server.pid)
            started = time.perf_counter()
            events = trio.run(drive, url, args.runs, args.concurrency, expected)
            wall = time.perf_counter() - started
            cpu = cpu_seconds(server.pid) - cpu_before
            rss_after = rss_bytes(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"store={args.store} runs={args.runs} concurrency={args.concurrency} events/run={expected}")
    print(f"events delivered   {events} in {wall:.2f} s = {events / wall:,.0f} events/s")
    print(f"server CPU         {cpu:.2f} s = {cpu / events * 1e6:.1f} us per event "
          f"({cpu / wall * 100:.0f}% of one core)")
    print(f"server RSS         {rss_before / 2**20:.1f} MiB -> {rss_after / 2**20:.1f} MiB = "
          f"{(rss_after - rss_before) / args.runs / 1024:.1f} KiB per finished run")


if __name__ == "__main__":
    main()
