"""The command-line options every scenario that measures a server shares."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from benchmarks import report

DEMO_WORKFLOW = "content-creation-workflow"
# the server needs a core of its own: on 2 cores a second client process only competes with it
CLIENT_PROCESSES = max(1, (os.cpu_count() or 2) - 1)


def server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="measure this server (http://host:port) instead of starting one")
    parser.add_argument("--server-pid", type=int, help="pid of the --url server, for CPU and RSS")
    parser.add_argument("--workflow-id", default=DEMO_WORKFLOW)
    parser.add_argument("--store", default="sqlite", help="store of a started server: sqlite, memory")
    parser.add_argument("--steps", type=int, default=20, help="demo steps per run (started server)")
    parser.add_argument("--progress", type=int, default=1, help="progress events per demo step")
    parser.add_argument(
        "--processes", type=int, default=CLIENT_PROCESSES,
        help=f"client worker processes [default: cores - 1 = {CLIENT_PROCESSES}]",
    )
    parser.add_argument("--results", type=Path, default=report.DEFAULT_RESULTS)
    parser.add_argument("--label", default="runcast", help="name of the server in the records")
