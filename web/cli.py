"""The `runcast` command: `runcast serve [options]` serves the demo (`web.demo`).

Every option also reads an environment variable (`--port` <- `RUNCAST_PORT`...); a flag given on
the command line wins. Bad values are refused before anything starts, naming the option.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import trio

from actors.run import SMALLEST_MAX_RUN_EVENTS
from actors.store import StorageFailed, StoreInUse, parse_store_url
from actors.supervisor import root_cause
from web.demo import Demo, demo_tools
from web.origins import parse_allowed_origins
from web.server import Settings, serve
from web.transport import BindFailed
from web.tuning import tune_interpreter

DEFAULTS = Settings()
DEMO_DEFAULTS = Demo()


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(text)
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(text)
    return value


def _run_event_limit(text: str) -> int:
    value = int(text)
    if value < SMALLEST_MAX_RUN_EVENTS:  # a run's own events: its start, and up to two at its end
        raise ValueError(text)
    return value


def _store_url(text: str) -> str:
    parse_store_url(text)
    return text


def _origins(text: str) -> tuple[str, ...]:
    return parse_allowed_origins(text)


_positive_int.__name__ = "positive integer"
_non_negative_int.__name__ = "non-negative integer"
_non_negative_float.__name__ = "non-negative number"
_positive_float.__name__ = "positive number"
_port.__name__ = "port"
_run_event_limit.__name__ = f"integer of at least {SMALLEST_MAX_RUN_EVENTS}"
_store_url.__name__ = "store ('memory', 'sqlite:PATH' or 'redis://HOST:PORT/DB')"
_origins.__name__ = "origins (comma-separated http(s)://host[:port], or *)"

OPTIONS: list[tuple[str, Callable[[str], Any], Any, str]] = [
    ("host", str, DEFAULTS.host, "address to bind (loopback by default)"),
    ("port", _port, DEFAULTS.port, "port to bind"),
    ("store", _store_url, DEFAULTS.store, "'sqlite:PATH' (durable), 'redis://HOST:PORT/DB' or 'memory'"),
    ("demo-step-delay", _non_negative_float, DEMO_DEFAULTS.step_delay,
     "seconds each step of the demo workflow takes (0 for benchmarks)"),
    ("demo-steps", _positive_int, DEMO_DEFAULTS.steps, "steps in the demo workflow"),
    ("demo-progress", _non_negative_int, DEMO_DEFAULTS.progress,
     "progress events per demo step"),
    ("token", str, None, "require this token (authenticate action / Bearer header)"),
    ("shutdown-grace", _non_negative_float, DEFAULTS.shutdown_grace,
     "seconds running runs get to finish at shutdown before they are cancelled"),
    ("max-message-size", _positive_int, DEFAULTS.max_message_size,
     "largest WebSocket message accepted, in bytes (larger: close code 1009)"),
    ("feed-capacity", _positive_int, DEFAULTS.feed_capacity,
     "events buffered per live subscriber before it falls back to the history"),
    ("graph-max-iterations", _positive_int, DEFAULTS.graph_max_iterations,
     "node passes a graph run may make in all, and the largest max_iterations it may ask for"),
    ("max-run-events", _run_event_limit, DEFAULTS.max_run_events,
     "events a run may hold; a run body that would emit more ends the run with an error"),
    ("allowed-origins", _origins, DEFAULTS.allowed_origins,
     "origins of browser pages that may use the server, comma-separated, or * for any; "
     "by default http(s) on 127.0.0.1, localhost and [::1] at the server's port"),
    ("node-id", str, None, "this node's name among the nodes sharing a Redis store, in logs and"
     " ownership (default: host name and port)"),
    ("lease-ttl", _positive_float, DEFAULTS.lease_ttl,
     "seconds a node's lease in Redis lasts unless renewed: a node that dies has its runs closed"
     " by the others this long after"),
    ("lease-renew", _positive_float, DEFAULTS.lease_renew,
     "seconds between renewals of the lease, and between sweeps for runs of dead nodes"),
    ("retention", _positive_float, DEFAULTS.retention,
     "seconds a finished run stays replayable in a Redis store (default: for ever)"),
    ("log-level", str, "INFO", "DEBUG, INFO, WARNING or ERROR"),
]


def env_name(option: str) -> str:
    return "RUNCAST_" + option.upper().replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runcast")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the server")
    for option, kind, default, help_text in OPTIONS:
        env = env_name(option)
        from_env = os.environ.get(env)
        serve_parser.add_argument(
            f"--{option}",
            type=kind,
            default=from_env if from_env is not None else default,
            help=f"{help_text} [env {env}; default {default}]",
        )
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        host=args.host,
        port=args.port,
        store=args.store,
        token=args.token or None,
        shutdown_grace=args.shutdown_grace,
        max_message_size=args.max_message_size,
        feed_capacity=args.feed_capacity,
        graph_max_iterations=args.graph_max_iterations,
        max_run_events=args.max_run_events,
        allowed_origins=args.allowed_origins,
        node_id=args.node_id or None,
        lease_ttl=args.lease_ttl,
        lease_renew=args.lease_renew,
        retention=args.retention,
    )


def check_settings(settings: Settings) -> str | None:
    """What is wrong with settings that are each fine on their own, or None."""
    if settings.retention is not None and parse_store_url(settings.store)[0] != "redis":
        return "--retention applies to a redis:// store only (the others keep histories for ever)"
    try:
        settings.node()
    except ValueError as wrong:
        return f"--node-id, --lease-ttl, --lease-renew: {wrong}"
    return None


def demo_from(args: argparse.Namespace) -> Demo:
    return Demo(
        step_delay=args.demo_step_delay, steps=args.demo_steps, progress=args.demo_progress
    )


async def _until_signalled() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            return


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        sys.exit(f"runcast: --log-level must be DEBUG, INFO, WARNING or ERROR, got {args.log_level!r}")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_from(args)
    wrong = check_settings(settings)
    if wrong is not None:
        sys.exit(f"runcast: {wrong}")
    tune_interpreter()
    try:
        trio.run(
            partial(
                serve,
                settings,
                _until_signalled,
                catalog=demo_from(args).catalog(),
                tools=demo_tools(),
            )
        )
    except* (StoreInUse, BindFailed, StorageFailed) as refused:
        sys.exit(f"runcast: {root_cause(refused)}")



if __name__ == "__main__":
    main()
