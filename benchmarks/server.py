"""The servers a scenario measures: `runcast serve` processes it starts itself, or URLs it is given.

A started server runs as its own process on a free loopback port, with the demo workflow sized by
the scenario and the store it asks for (a temporary SQLite file by default). Several started
servers (`--nodes N`) share one `redis://` store, each with its own `--node-id` and port. Their
CPU seconds and RSS come from /proc; the same works for servers given by URL when their pids are
given too (Agno's uvicorn, say). When a server has `GET /metrics` (runcast does), `metrics()`
reads it, so a report can show the servers' own counts before and after, added up over them.
When their Redis is known (a started server's `redis://` store, or `--redis`), `Usage` also
holds Redis's own CPU seconds and `used_memory`, read with `INFO cpu memory` over a plain socket.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from io import BufferedReader
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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



@attrs.frozen
class RedisUsage:
    cpu_s: float  # used_cpu_user + used_cpu_sys
    used_memory: int  # bytes


def redis_usage(url: str) -> RedisUsage:
    """Redis's own CPU seconds and `used_memory`, from `INFO cpu memory` at `url`
    (redis://[:PASSWORD@]HOST:PORT/DB), over a plain socket."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 6379)
    with socket.create_connection(address, timeout=5) as connection, \
            connection.makefile("rb") as replies:
        if parts.password is not None:
            _redis_call(connection, replies, "AUTH", parts.password)
        text = _redis_call(connection, replies, "INFO", "cpu", "memory")
    info = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return RedisUsage(
        float(info["used_cpu_user"]) + float(info["used_cpu_sys"]), int(info["used_memory"])
    )


def _redis_call(connection: socket.socket, replies: BufferedReader, *parts: str) -> str:
    """Send one command (RESP), return its simple or bulk string reply; an error reply raises."""
    encoded = [part.encode() for part in parts]
    connection.sendall(
        b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(e), e) for e in encoded)
    )
    head = replies.readline()
    if head.startswith(b"$"):
        return replies.read(int(head[1:]) + 2)[:-2].decode()
    if head.startswith(b"+"):
        return head[1:].decode().rstrip()
    raise OSError(f"Redis answered {parts[0]} with {head.decode(errors='replace').rstrip()!r}")


@attrs.frozen
class Usage:
    """What the servers and their Redis have used up to one moment."""

    at: float  # time.time()
    cpu_s: tuple[float, ...] | None  # each server's, None unless every pid is known
    rss_bytes: tuple[int, ...] | None
    redis: RedisUsage | None


@attrs.frozen
class Servers:
    """The servers a scenario measures: one or several nodes, and the Redis they share if known.
    Clients spread over `ws_urls` in turn."""

    nodes: tuple[Server, ...]
    redis: str | None = None  # redis://HOST:PORT/DB

    @property
    def ws_urls(self) -> list[str]:
        return [node.ws_url for node in self.nodes]

    def usage(self) -> Usage:
        pids = [node.pid for node in self.nodes if node.pid is not None]
        known = len(pids) == len(self.nodes)
        return Usage(
            time.time(),
            tuple(process_cpu_seconds(pid) for pid in pids) if known else None,
            tuple(process_rss_bytes(pid) for pid in pids) if known else None,
            redis_usage(self.redis) if self.redis else None,
        )

    def metrics(self) -> dict[str, float]:
        """The samples of every server's `GET /metrics`, added up by name."""
        total: dict[str, float] = {}
        for node in self.nodes:
            for name, value in node.metrics().items():
                total[name] = total.get(name, 0.0) + value
        return total


def usage_figures(
    before: Usage, after: Usage, count: int | None = None, unit: str = "event"
) -> dict[str, Any]:
    """What the servers (added up, and each when there are several) and their Redis used between
    two readings: CPU seconds, the share of a core over the time between them, and microseconds
    per `unit` when `count` of them were delivered; Redis's used_memory at the end and its
    growth."""
    span = max(after.at - before.at, 1e-9)
    figures: dict[str, Any] = {}

    def cpu(side: str, seconds: float) -> None:
        figures[f"{side}_cpu_s"] = round(seconds, 3)
        if count:
            figures[f"{side}_cpu_us_per_{unit}"] = round(seconds / count * 1e6, 1)
        figures[f"{side}_core_share"] = round(seconds / span, 3)

    if before.cpu_s is not None and after.cpu_s is not None:
        each = [a - b for a, b in zip(after.cpu_s, before.cpu_s, strict=True)]
        cpu("server", sum(each))
        if len(each) > 1:
            figures["server_cpu_s_each"] = [round(seconds, 3) for seconds in each]
    if before.redis is not None and after.redis is not None:
        cpu("redis", after.redis.cpu_s - before.redis.cpu_s)
        figures["redis_used_memory_mib"] = round(after.redis.used_memory / 2**20, 1)
        figures["redis_used_memory_growth_mib"] = round(
            (after.redis.used_memory - before.redis.used_memory) / 2**20, 1
        )
    return figures


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




def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def is_redis(store: str) -> bool:
    return store.startswith("redis://")


def serve_command(demo: DemoSize, store_url: str) -> list[str]:
    """`runcast serve` (of this venv) on `store_url` with the demo workflow of `demo`, logging
    warnings and errors only; the port, node id and other options are the caller's to add."""
    return [
        str(Path(sys.executable).parent / "runcast"), "serve",
        "--store", store_url, "--log-level", "WARNING",
        "--demo-step-delay", str(demo.step_delay), "--demo-steps", str(demo.steps),
        "--demo-progress", str(demo.progress),
    ]


@contextmanager
def started_runcast(
    demo: DemoSize, store: str = "sqlite", feed_capacity: int | None = None, nodes: int = 1
) -> Iterator[Servers]:
    """`nodes` `runcast serve` processes with `demo` and `store` ("sqlite" for a temporary file,
    "memory", or a store URL, which several nodes share: give a redis:// one), each on its own
    free loopback port and, when there are several, with `--node-id node-<i>`; all stopped with
    SIGTERM at the end."""
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="runcast-bench-") as tmp:
        store_url = f"sqlite:{tmp}/bench.db" if store == "sqlite" else store
        command = serve_command(demo, store_url)
        if feed_capacity is not None:
            command += ["--feed-capacity", str(feed_capacity)]
        try:
            ports = free_ports(nodes)
            for number, port in enumerate(ports, 1):
                node_id = ["--node-id", f"node-{number}"] if nodes > 1 else []
                processes.append(subprocess.Popen([*command, "--port", str(port), *node_id]))
            servers = Servers(
                tuple(Server(f"http://127.0.0.1:{port}", process.pid)
                      for port, process in zip(ports, processes, strict=True)),
                store if is_redis(store) else None,
            )
            for node in servers.nodes:
                wait_for_health(node.base_url)
            yield servers
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@contextmanager
def attached(
    urls: Sequence[str], pids: Sequence[int] = (), redis: str | None = None
) -> Iterator[Servers]:
    """Servers someone else started: `urls` are their bases (http://host:port), `pids` (one per
    URL, or none) their processes, `redis` the Redis they share."""
    servers = Servers(
        tuple(Server(url.rstrip("/"), pids[i] if pids else None) for i, url in enumerate(urls)),
        redis,
    )
    for node in servers.nodes:
        wait_for_health(node.base_url)
    yield servers


def redis_of(args: argparse.Namespace) -> str | None:
    """The Redis of `target_options`: `--redis`, or else a started server's redis:// store."""
    if args.redis:
        return str(args.redis)
    return str(args.store) if not args.url and is_redis(args.store) else None


@contextmanager
def server_under_test(args: argparse.Namespace, demo: DemoSize) -> Iterator[Servers]:
    """The servers a scenario measures, as its `benchmarks.options.target_options` say: those
    at `--url` when given, else `--nodes` `runcast serve` processes started with `demo` on
    `--store`. Refuses (SystemExit) a `--server-pid` count other than the `--url` count, and
    several nodes on anything but a redis:// store."""
    urls, pids = args.url or [], args.server_pid or []
    if pids and len(pids) != len(urls):
        raise SystemExit(f"--server-pid: one per --url, in the same order "
                         f"(got {len(pids)} for {len(urls)} --url)")
    if args.nodes > 1 and (urls or not is_redis(args.store)):
        raise SystemExit(f"--nodes {args.nodes} needs a redis://HOST:PORT/DB --store for the "
                         "nodes to share, and no --url (give each server's --url instead)")
    if urls:
        with attached(urls, pids, redis_of(args)) as servers:
            yield servers
    else:
        with started_runcast(demo, args.store, nodes=args.nodes) as servers:
            yield servers


def target_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """How a record names the servers measured: their URLs (or "started"), how many, their Redis."""
    return {"url": args.url or "started", "nodes": len(args.url) if args.url else args.nodes,
            "redis": redis_of(args)}
