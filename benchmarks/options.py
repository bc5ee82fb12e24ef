"""The command-line options every scenario that measures a server shares.

`target_options` says which servers a scenario measures: those at `--url` (several times for
several nodes, with a `--server-pid` for each and `--redis` for the Redis they share), or
`--nodes` `runcast serve` processes it starts on `--store`; `benchmarks.server.server_under_test`
reads them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from benchmarks import report

DEMO_WORKFLOW = "content-creation-workflow"
# the server needs a core of its own: on 2 cores a second client process only competes with it
CLIENT_PROCESSES = max(1, (os.cpu_count() or 2) - 1)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


positive_int.__name__ = "positive integer"


def redis_url(text: str) -> str:
    if not text.startswith("redis://"):
        raise ValueError(text)
    return text


redis_url.__name__ = "redis://HOST:PORT/DB URL"


def target_options(parser: argparse.ArgumentParser) -> None:
    """--url, --server-pid, --store, --nodes, --redis: the servers a scenario measures."""
    parser.add_argument(
        "--url", action="append",
        help="measure this server (http://host:port) instead of starting one; give it once per "
             "node to measure several, the clients spread over them in turn",
    )
    parser.add_argument("--server-pid", type=int, action="append",
                        help="pid of a --url server, for CPU and RSS: one per --url, in its order")
    parser.add_argument(
        "--store", default="sqlite",
        help="store of a started server: sqlite (a temporary file), memory, or "
             "redis://HOST:PORT/DB (its CPU and memory reported too)",
    )
    parser.add_argument("--nodes", type=positive_int, default=1,
                        help="runcast serve processes to start on one redis:// --store, "
                             "node-1 ... node-N, each on its own port [default: 1]")
    parser.add_argument("--redis", type=redis_url,
                        help="the Redis the --url servers share (redis://HOST:PORT/DB), "
                             "for its CPU and memory")


def server_options(parser: argparse.ArgumentParser) -> None:
    target_options(parser)
    parser.add_argument("--workflow-id", default=DEMO_WORKFLOW)
    parser.add_argument("--steps", type=int, default=20, help="demo steps per run (started server)")
    parser.add_argument("--progress", type=int, default=1, help="progress events per demo step")
    parser.add_argument(
        "--processes", type=int, default=CLIENT_PROCESSES,
        help=f"client worker processes [default: cores - 1 = {CLIENT_PROCESSES}]",
    )
    parser.add_argument("--results", type=Path, default=report.DEFAULT_RESULTS)
    parser.add_argument("--label", default="runcast", help="name of the server in the records")
