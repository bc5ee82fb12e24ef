"""The server a scenario measures: a `runcast serve` it starts itself, or any URL it is given.

A started server runs as its own process on a free loopback port, with the demo workflow sized by
the scenario and the store it asks for (a temporary SQLite file by default). Its CPU seconds and
RSS come from /proc; the same works for a server given by URL when its pid is given too (Agno's
uvicorn, say). When the server has `GET /metrics` (runcast does), `metrics()` reads it, so a
report can show the server's own counts before and after.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
from prometheus_client.parser import text_string_to_metric_families

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@attrs.frozen
class DemoSize:
    """The demo workflow of a started server: events per run = 2 + steps * (3 + progress)."""

    steps: int = 20
    progress: int = 1
    step_delay: float = 0.0

    @property
    def events_per_run(self) -> int:
        return 2 + self.steps * (3 + self.progress)


@attrs.frozen
class Server:
    base_url: str  # http://host:port
    pid: int | None

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url.removeprefix("http") + "/workflows/ws"

    def cpu_seconds(self) -> float | None:
        return None if self.pid is None else process_cpu_seconds(self.pid)

    def rss_bytes(self) -> int | None:
        return None if self.pid is None else process_rss_bytes(self.pid)

    def metrics(self) -> dict[str, float]:
        """Every sample of `GET /metrics` by name (labels joined in), or {} if there is none."""
        try:
            with urllib.request.urlopen(self.base_url + "/metrics", timeout=5) as response:
                kind = response.headers.get("Content-Type", "")
                text = response.read().decode()
        except OSError:
            return {}
        if not kind.startswith("text/plain"):
            return {}  # not Prometheus text (Agno's /metrics is JSON usage data)
        samples = {}
        try:
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                    samples[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
        except ValueError:
            return {}
        return samples


def metrics_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float] | None:
    """How much each of runcast's own counters grew over a measurement (None without them)."""
    if not before or not after:
        return None
    return {
        name: value - before.get(name, 0.0)
        for name, value in after.items()
        if name.startswith("runcast_") and name.endswith("_total")
    }


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_health(base_url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base_url + "/health", timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{base_url}/health did not answer within {timeout} s") from None
            time.sleep(0.1)


@contextmanager
def started_runcast(
    demo: DemoSize, store: str = "sqlite", feed_capacity: int | None = None
) -> Iterator[Server]:
    """`runcast serve` in its own process with `demo` and `store` ("sqlite" for a temporary
    file, "memory", or a store URL); stopped with SIGTERM at the end."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="runcast-bench-") as tmp:
        store_url = f"sqlite:{tmp}/bench.db" if store == "sqlite" else store
        command = [
            str(Path(sys.executable).parent / "runcast"), "serve",
            "--port", str(port), "--store", store_url, "--log-level", "WARNING",
            "--demo-step-delay", str(demo.step_delay), "--demo-steps", str(demo.steps),
            "--demo-progress", str(demo.progress),
        ]
        if feed_capacity is not None:
            command += ["--feed-capacity", str(feed_capacity)]
        process = subprocess.Popen(command)
        try:
            server = Server(f"http://127.0.0.1:{port}", process.pid)
            wait_for_health(server.base_url)
            yield server
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def attached(url: str, pid: int | None) -> Iterator[Server]:
    """A server someone else started: `url` is its base (http://host:port)."""
    server = Server(url.rstrip("/"), pid)
    wait_for_health(server.base_url)
    yield server


@contextmanager
def server_under_test(
    url: str | None, pid: int | None, demo: DemoSize, store: str
) -> Iterator[Server]:
    """The server a scenario measures: the one at `url` when given, else a `runcast serve`
    started with `demo` and `store`."""
    if url:
        with attached(url, pid) as server:
            yield server
    else:
        with started_runcast(demo, store) as server:
            yield server
