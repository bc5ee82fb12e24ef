"""`hold`: many live runs at once, each emitting slowly, a share of them watched over WebSocket.

The client starts `--runs` runs (`--start-concurrency` at a time per worker process; on the
servers in turn when there are several), each on a fresh socket: it sends start-workflow and reads up to the run's first event (WorkflowStarted).
The socket of an unwatched run is closed there (the run goes on in the server); a watched run
(`--watched` of them) keeps its socket and reads every event, checking the indices with `Cursor`
and timing each event that carries `data.emitted_at`. Once every worker has started all its runs
(they wait for each other through files in a shared temporary directory), each holds `--duration`
seconds, then closes its sockets. The runs are not stopped: a started server is terminated (which
cancels them); a server given by `--url` keeps them until they end.

The event rate of a started server: its demo workflow has `--progress` ticks per step (20 by
default), one every `--interval` seconds, each a StepProgress with `emitted_at`; after a step's
last tick its StepOutput, StepCompleted and the next StepStarted follow at once. So a run emits
(progress + 3) events every progress x interval seconds: 1.15 events per interval with 20 ticks
(0.23 events/s per run at 5 s, 2,300 events/s appended for 10,000 runs), and the delay is measured
on the StepProgress ones, one per interval per watched run. Unless `--steps` is given, a run has
enough steps to outlast twice the start phase (counted at 50 starts/s) plus the hold.

The hold window is the time from the moment every run is started to the moment the first
worker ends its hold. Figures: runs started, live runs per the servers' /metrics
(`runcast_live_runs`, added up) read after the hold, server RSS before the runs and at the end of
the hold (and per live run), server CPU over the hold window (sampled from /proc once a second
when the servers' pids are known; added up, and each server's RSS and CPU when there are
several), Redis's CPU over the window and its used_memory (when its URL is known), delivery delay
of the events emitted in the window, events received by the watchers, gaps and duplicates (must
be 0), watched runs that ended during the hold (must be 0).

The delivery delay is given twice: until the kernel received the event's bytes on the watcher's
socket (`socket_event_delay`, `SO_TIMESTAMP`: the server's delay, what a client that is not busy
would see; an event that came before Linux turned timestamps on counts only in the other), and
until the client process read it (`event_delay`). The runs that started together at the
beginning of the start phase tick together, so one client process gets hundreds of events in
the same millisecond and reads the last of them well after they arrived.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from benchmarks import report
from benchmarks.lean_ws import LeanWebSocket, open_websocket_url
from benchmarks.options import server_options
from benchmarks.report import Percentiles
from benchmarks.server import (
    DemoSize,
    Servers,
    Usage,
    metrics_delta,
    server_under_test,
    target_parameters,
    usage_figures,
)
from benchmarks.workers import in_turn, run_workers, split, url_of
from benchmarks.wsclient import TERMINAL, Cursor, decode, event_delay

JOB = "benchmarks.scenarios.hold:client_job"
DEFAULT_TICKS = 20
ASSUMED_STARTS_PER_S = 50.0  # for sizing the runs so they outlast the start phase
SAMPLE_EVERY_S = 1.0
BARRIER_POLL_S = 0.02


def demo_size(
    runs: int, interval: float, duration: float, ticks: int, steps: int | None = None
) -> DemoSize:
    """A demo workflow ticking every `interval` seconds for longer than the whole scenario."""
    if steps is None:
        lifetime = 2 * (runs / ASSUMED_STARTS_PER_S + duration)
        steps = max(1, math.ceil(lifetime / (ticks * interval)))
    return DemoSize(steps, ticks, ticks * interval)


@attrs.define
class Watch:
    """What one watched run's socket received."""

    events: int = 0
    cursor: Cursor = attrs.Factory(Cursor)
    # (emitted_at, delay until the client read it, delay until the kernel received it or None), s
    delays: list[tuple[float, float, float | None]] = attrs.Factory(list)
    ended: bool = False  # got its terminal event


class StartRefused(RuntimeError):
    pass


async def _first_event(ws: LeanWebSocket, workflow_id: str) -> dict[str, Any]:
    """Send start-workflow on a connected socket and return the run's first event."""
    await ws.send_message(
        json.dumps({"action": "start-workflow", "workflow_id": workflow_id, "message": "hold"})
    )
    while True:
        event = decode(await ws.get_message())
        if "event_index" in event:
            return event
        if event.get("event") in ("error", "auth_error"):
            raise StartRefused(f"start-workflow {workflow_id!r} refused: {event.get('error')}")


async def _all_workers_at(directory: str, worker: int, workers: int) -> None:
    """Wait until every worker process has come here (one file each in a shared directory)."""
    Path(directory, f"{worker}.ready").touch()
    while len(list(Path(directory).glob("*.ready"))) < workers:
        await trio.sleep(BARRIER_POLL_S)


def _take(watch: Watch, event: dict[str, Any], arrived_at: float | None) -> None:
    now = time.time()
    watch.events += 1
    watch.cursor.accept(event["event_index"])
    delay = event_delay(event, now)
    if delay is not None:
        emitted_at = now - delay
        at_socket = None if arrived_at is None else arrived_at - emitted_at
        watch.delays.append((emitted_at, delay, at_socket))
    if event.get("event") in TERMINAL:
        watch.ended = True


async def client_job(share: dict[str, Any], tick: Callable[[int], None]) -> dict[str, Any]:
    """Start `runs` runs, keep `watched` of them followed; hold `duration` s once all started."""
    runs, watched = share["runs"], share["watched"]
    starting = trio.Semaphore(share["start_concurrency"])
    all_started = trio.Event()
    started = 0
    first_start_at = time.time()
    readers: list[trio.CancelScope] = []
    watches: list[Watch] = []

    async def one(index: int, watch: Watch | None) -> None:
        nonlocal started
        await starting.acquire()
        starting_held = True
        try:
            url = url_of(share, index)
            async with open_websocket_url(url, stamp_arrivals=watch is not None) as ws:
                await ws.get_message()  # connected
                first = await _first_event(ws, share["workflow_id"])
                starting.release()
                starting_held = False
                started += 1
                tick(1)
                if started == runs:
                    all_started.set()
                if watch is not None:
                    _take(watch, first, ws.arrived_at)
                    with trio.CancelScope() as reading:
                        readers.append(reading)
                        while not watch.ended:
                            message = await ws.get_message()
                            _take(watch, decode(message), ws.arrived_at)
        finally:
            if starting_held:
                starting.release()

    async with trio.open_nursery() as nursery:
        for index in range(runs):
            watch = Watch() if index < watched else None
            if watch is not None:
                watches.append(watch)
            nursery.start_soon(one, index, watch)
        await all_started.wait()
        await _all_workers_at(share["barrier"], share["worker"], share["workers"])
        started_at = time.time()
        await trio.sleep(share["duration"])
        ended_at = time.time()
        for reading in readers:
            reading.cancel()
    return {
        "runs_started": started,
        "first_start_at": first_start_at,
        "started_at": started_at,
        "ended_at": ended_at,
        "events": sum(w.events for w in watches),
        "gaps": sum(w.cursor.gaps for w in watches),
        "duplicates": sum(w.cursor.duplicates for w in watches),
        "ended_early": sum(w.ended for w in watches),
        "delays": [pair for w in watches for pair in w.delays],
    }


@contextmanager
def sampled(servers: Servers) -> Iterator[list[Usage]]:
    """The servers' and their Redis's usage, once before, every SAMPLE_EVERY_S while the body
    runs (from a thread), and once after."""
    samples: list[Usage] = []
    stop = threading.Event()

    def take() -> None:
        samples.append(servers.usage())

    def keep_taking() -> None:
        while not stop.wait(SAMPLE_EVERY_S):
            take()

    take()
    thread = threading.Thread(target=keep_taking, name="hold-sampler", daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()
        take()


def _last_at_or_before(samples: list[Usage], at: float) -> Usage | None:
    before = [s for s in samples if s.at <= at]
    return before[-1] if before else None


def _spread(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def measure(
    servers: Servers,
    workflow_id: str,
    runs: int,
    watched: int,
    duration: float,
    processes: int,
    start_concurrency: int,
) -> dict[str, Any]:
    """Start the runs, hold, and return the figures."""
    run_shares = split(runs, processes)
    metrics_before = servers.metrics()
    with tempfile.TemporaryDirectory(prefix="runcast-hold-") as barrier, sampled(servers) as samples:
        shares = [
            {"workflow_id": workflow_id, "runs": r, "watched": w,
             "duration": duration, "start_concurrency": start_concurrency,
             "barrier": barrier, "worker": i, "workers": len(run_shares), **urls}
            for i, (r, w, urls) in enumerate(
                zip(run_shares, _spread(watched, len(run_shares)),
                    in_turn(servers.ws_urls, run_shares), strict=True)
            )
        ]
        outcomes = run_workers(JOB, shares, total=runs, unit="runs started", label="hold")
    metrics_after = servers.metrics()
    results = [o.result for o in outcomes]
    first_start = min(r["first_start_at"] for r in results)
    window_start = max(r["started_at"] for r in results)
    window_end = min(r["ended_at"] for r in results)
    runs_started = sum(r["runs_started"] for r in results)
    in_window = [d for r in results for d in r["delays"] if window_start <= d[0] <= window_end]
    delays = Percentiles.of(delay for _, delay, _ in in_window)
    socket_delays = Percentiles.of(at_socket for _, _, at_socket in in_window if at_socket is not None)
    live_runs = metrics_after.get("runcast_live_runs")
    figures: dict[str, Any] = {
        "runs_started": runs_started,
        "start_s": round(window_start - first_start, 3),
        "starts_per_s": round(runs_started / max(window_start - first_start, 1e-9), 1),
        "hold_s": round(window_end - window_start, 3),
        "live_runs": None if live_runs is None else int(live_runs),
        "watched": watched,
        "events": sum(r["events"] for r in results),
        "gaps": sum(r["gaps"] for r in results),
        "duplicates": sum(r["duplicates"] for r in results),
        "watched_ended_early": sum(r["ended_early"] for r in results),
        "event_delay": delays.in_ms() if delays else None,
        "socket_event_delay": socket_delays.in_ms() if socket_delays else None,
        "client_cpu_s": round(sum(o.cpu_seconds for o in outcomes), 3),
    }
    figures.update(_server_figures(samples, window_start, window_end, live_runs or runs_started))
    delta = metrics_delta(metrics_before, metrics_after)
    if delta is not None:
        figures["server_metrics_delta"] = delta
    return figures


def _server_figures(
    samples: list[Usage], window_start: float, window_end: float, live_runs: float
) -> dict[str, Any]:
    """RSS before the runs and at the end of the hold (added up over the servers, and each),
    the servers' and Redis's CPU over the hold window."""
    start = _last_at_or_before(samples, window_start)
    end = _last_at_or_before(samples, window_end)
    if start is None or end is None:
        return {}
    figures = usage_figures(start, end) if end.at > start.at else {}
    before = samples[0].rss_bytes
    if before is not None and end.rss_bytes is not None:
        in_window = [sum(s.rss_bytes) for s in samples
                     if start.at <= s.at <= end.at and s.rss_bytes is not None]
        figures.update({
            "server_rss_before_mib": round(sum(before) / 2**20, 1),
            "server_rss_end_mib": round(sum(end.rss_bytes) / 2**20, 1),
            "server_rss_peak_mib": round(max(in_window) / 2**20, 1),
            "server_rss_kib_per_live_run": round(
                (sum(end.rss_bytes) - sum(before)) / 1024 / max(live_runs, 1), 1
            ),
        })
        if len(end.rss_bytes) > 1:
            figures["server_rss_end_mib_each"] = [round(b / 2**20, 1) for b in end.rss_bytes]
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    server_options(parser)
    parser.set_defaults(steps=None, progress=DEFAULT_TICKS)
    parser.add_argument("--runs", type=int, default=10000, help="live runs to hold")
    parser.add_argument("--watched", type=int, default=1000,
                        help="runs followed over WebSocket during the hold")
    parser.add_argument("--interval", type=float, default=5.0,
                        help="seconds between a run's progress ticks (started server)")
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds to hold once every run is started")
    parser.add_argument("--start-concurrency", type=int, default=200,
                        help="runs being started at once per client process")


def _argument_problems(args: argparse.Namespace) -> list[str]:
    problems = [
        f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
        for name in ("runs", "processes", "start_concurrency", "progress")
        if getattr(args, name) < 1
    ]
    if not 0 <= args.watched <= args.runs:
        problems.append(f"--watched must be between 0 and --runs ({args.runs}), got {args.watched}")
    if not args.interval > 0:
        problems.append(f"--interval must be a positive number of seconds, got {args.interval}")
    if not args.duration >= 0:
        problems.append(f"--duration must be zero or more seconds, got {args.duration}")
    if args.steps is not None and args.steps < 1:
        problems.append(f"--steps must be at least 1, got {args.steps}")
    return problems


def command(args: argparse.Namespace) -> list[dict[str, Any]]:
    wrong = _argument_problems(args)
    if wrong:
        raise SystemExit("hold: " + "; ".join(wrong))
    demo = demo_size(args.runs, args.interval, args.duration, args.progress, args.steps)
    with server_under_test(args, demo) as servers:
        figures = measure(servers, args.workflow_id, args.runs, args.watched, args.duration,
                          args.processes, args.start_concurrency)
    parameters: dict[str, Any] = {
        "server": args.label, **target_parameters(args), "store": args.store,
        "runs": args.runs, "watched": args.watched, "duration": args.duration,
        "processes": args.processes, "start_concurrency": args.start_concurrency,
    }
    if not args.url:
        parameters.update({"interval": args.interval, "steps": demo.steps,
                           "progress": demo.progress, "step_delay": demo.step_delay,
                           "events_per_interval": round((demo.progress + 3) / demo.progress, 3)})
    entry = report.record("hold", parameters, figures)
    report.append(args.results, entry)
    print(f"hold: {args.label}, {args.runs} live runs, {args.watched} watched, "
          f"{args.duration:g} s hold")
    print(report.table(rows(figures)))
    return [entry]


def problems(figures: dict[str, Any], runs: int) -> list[str]:
    """What makes a hold measurement wrong rather than slow."""
    found = []
    if figures["runs_started"] != runs:
        found.append(f"{figures['runs_started']} of {runs} runs started")
    if figures["gaps"] or figures["duplicates"]:
        found.append(f"{figures['gaps']} gaps and {figures['duplicates']} duplicates")
    if figures["watched_ended_early"]:
        found.append(f"{figures['watched_ended_early']} watched runs ended during the hold")
    return found


def rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    table = [
        ("runs started", (f"{figures['runs_started']:,} in {figures['start_s']:.2f} s "
                          f"({figures['starts_per_s']:,.0f}/s)")),
        ("live runs after the hold", str(figures["live_runs"])),
        ("hold", f"{figures['hold_s']:.2f} s"),
        ("events to the watchers", f"{figures['events']:,} over {figures['watched']:,} sockets"),
        ("gaps / duplicates", f"{figures['gaps']} / {figures['duplicates']}"),
        ("watched runs ended early", str(figures["watched_ended_early"])),
        ("client CPU", f"{figures['client_cpu_s']:.2f} s"),
    ]
    if "server_rss_end_mib" in figures:
        per_run = figures["server_rss_kib_per_live_run"]
        table.append(("server RSS", (f"{figures['server_rss_before_mib']:,.1f} MiB before, "
                                     f"{figures['server_rss_end_mib']:,.1f} MiB at the end "
                                     f"(peak {figures['server_rss_peak_mib']:,.1f}), "
                                     f"{per_run:,.1f} KiB/live run")))
    if "server_rss_end_mib_each" in figures:
        each = ", ".join(f"{mib:,.1f} MiB" for mib in figures["server_rss_end_mib_each"])
        table.append(("  each server at the end", each))
    table += report.usage_rows(figures, during=" over the hold")
    for key, label in (("socket_event_delay", "event delay at the socket"),
                       ("event_delay", "  until the client read it")):
        p = figures.get(key)
        if p:
            table.append((label, f"{report.latency_text(p)} ({p['count']:,} events)"))
    return table
