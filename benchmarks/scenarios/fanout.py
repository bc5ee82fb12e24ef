"""`fanout`: one run, S subscribers, each on its own socket, every one reading every event.

The parent starts one run (its socket closes after WorkflowStarted; the run goes on), then the
subscribers, spread over worker processes (and over the servers in turn when there are several,
the run started on the first), all connect at once and send `reconnect` with
`last_event_index` -1. A subscriber that joins while the run is live gets `catch_up`, the events
it missed from index 0, `subscribed`, then the live events; one that joins after the run ended
gets `replay` and the whole history. Either way it reads up to the terminal event and `Cursor`
checks indices 0, 1, 2, ... with no gap and no duplicate. The figures say how many joined live.

On a started server the demo run is sized by `--events` (steps = (events - 2) / (3 + progress),
rounded up, unless `--steps` is given) and paced to last `--run-seconds` (step delay =
run-seconds / steps), long enough for the subscribers to connect while it is live yet far
shorter than fanning its events out takes, so the server, not the run, sets the pace.

Figures: deliveries (events received, all subscribers together), deliveries/s over the wall time
from the first subscriber's connect to the last one's terminal event, server CPU per delivery
(from before the run starts to the end, when the pids are known; each server's too) and Redis's
(when its URL is known, with its used_memory), event delay (now - emitted_at)
of every event that carries it, catch-up included, and of those that came after `subscribed`
(live), gaps and duplicates (must be 0), and
subscribers that did not get every event (must be 0).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from benchmarks import report
from benchmarks.lean_ws import open_websocket_url
from benchmarks.options import server_options
from benchmarks.report import Percentiles
from benchmarks.server import (
    DemoSize,
    Servers,
    metrics_delta,
    server_under_test,
    target_parameters,
    usage_figures,
)
from benchmarks.workers import in_turn, run_workers, split, url_of
from benchmarks.wsclient import TERMINAL, Cursor, decode, event_delay

JOB = "benchmarks.scenarios.fanout:client_job"
TICK_EVERY = 100  # events a subscriber reads between progress ticks
JOINED_LIVE = frozenset({"catch_up", "subscribed"})


class ServerRefused(RuntimeError):
    pass


def demo_size(events: int, progress: int, run_seconds: float, steps: int | None = None) -> DemoSize:
    """A demo run of about `events` events (at least that many) lasting about `run_seconds`."""
    if steps is None:
        steps = max(1, -(-(events - 2) // (3 + progress)))  # rounded up
    return DemoSize(steps, progress, run_seconds / steps)


def _refusal(frame: dict[str, Any], what: str) -> ServerRefused | None:
    if frame.get("event") in ("error", "auth_error"):
        return ServerRefused(f"{what} refused: {frame.get('error')}")
    return None


async def start_run(url: str, workflow_id: str) -> str:
    """Start a run of `workflow_id` and return its id once its first event has come."""
    async with open_websocket_url(url) as ws:
        await ws.get_message()  # connected
        start = {"action": "start-workflow", "workflow_id": workflow_id, "message": "fanout"}
        await ws.send_message(json.dumps(start))
        while True:
            frame = decode(await ws.get_message())
            refused = _refusal(frame, f"start-workflow {workflow_id!r}")
            if refused:
                raise refused
            if "event_index" in frame:
                return str(frame["run_id"])


@attrs.define
class Subscription:
    """What one subscriber received."""

    opening: str = ""  # the first control frame: catch_up, subscribed or replay
    events: int = 0
    cursor: Cursor = attrs.Factory(Cursor)
    delays: list[float] = attrs.Factory(list)  # of the events before `subscribed` (catch-up)
    live_delays: list[float] = attrs.Factory(list)  # of the events after `subscribed`
    connect_at: float = 0.0  # time.time()
    done_at: float = 0.0  # the terminal event came


async def subscribe(url: str, run_id: str, tick: Callable[[int], None]) -> Subscription:
    sub = Subscription(connect_at=time.time())
    live = False
    async with open_websocket_url(url) as ws:
        await ws.get_message()  # connected
        await ws.send_message(
            json.dumps({"action": "reconnect", "run_id": run_id, "last_event_index": -1})
        )
        while True:
            frame = decode(await ws.get_message())
            now = time.time()
            if "event_index" not in frame:  # a control frame
                refused = _refusal(frame, f"reconnect to run {run_id}")
                if refused:
                    raise refused
                sub.opening = sub.opening or str(frame.get("event"))
                live = live or frame.get("event") == "subscribed"
                continue
            sub.events += 1
            sub.cursor.accept(frame["event_index"])
            delay = event_delay(frame, now)
            if delay is not None:
                (sub.live_delays if live else sub.delays).append(delay)
            if sub.events % TICK_EVERY == 0:
                tick(TICK_EVERY)
            if frame.get("event") in TERMINAL:
                sub.done_at = now
                tick(sub.events % TICK_EVERY)
                return sub


async def client_job(share: dict[str, Any], tick: Callable[[int], None]) -> dict[str, Any]:
    """`subscribers` subscribers to `run_id`, all connecting at once."""
    subs: list[Subscription] = []

    async def one(index: int) -> None:
        subs.append(await subscribe(url_of(share, index), share["run_id"], tick))

    async with trio.open_nursery() as nursery:
        for index in range(share["subscribers"]):
            nursery.start_soon(one, index)
    return {
        "first_connect_at": min(s.connect_at for s in subs),
        "last_done_at": max(s.done_at for s in subs),
        "events_per_subscriber": [s.cursor.next_index for s in subs],
        "deliveries": sum(s.events for s in subs),
        "gaps": sum(s.cursor.gaps for s in subs),
        "duplicates": sum(s.cursor.duplicates for s in subs),
        "joined_live": sum(s.opening in JOINED_LIVE for s in subs),
        "delays": [d for s in subs for d in s.delays + s.live_delays],
        "live_delays": [d for s in subs for d in s.live_delays],
    }


def measure(
    servers: Servers, workflow_id: str, subscribers: int, processes: int, expected_events: int
) -> dict[str, Any]:
    """Start the run, fan it out, return the figures. `expected_events` only sizes the bar."""
    shares_of = split(subscribers, processes)
    metrics_before, usage_before = servers.metrics(), servers.usage()
    run_id = trio.run(start_run, servers.ws_urls[0], workflow_id)
    shares = [{"run_id": run_id, "subscribers": s, **urls}
              for s, urls in zip(shares_of, in_turn(servers.ws_urls, shares_of), strict=True)]
    outcomes = run_workers(JOB, shares, total=subscribers * expected_events, unit="deliveries",
                           label=f"fanout s={subscribers}")
    usage_after, metrics_after = servers.usage(), servers.metrics()
    results = [o.result for o in outcomes]
    wall = max(r["last_done_at"] for r in results) - min(r["first_connect_at"] for r in results)
    deliveries = sum(r["deliveries"] for r in results)
    per_subscriber = [n for r in results for n in r["events_per_subscriber"]]
    events_in_run = max(per_subscriber)
    delays = Percentiles.of(d for r in results for d in r["delays"])
    live_delays = Percentiles.of(d for r in results for d in r["live_delays"])
    figures: dict[str, Any] = {
        "subscribers": len(per_subscriber),
        "events_in_run": events_in_run,
        "joined_live": sum(r["joined_live"] for r in results),
        "deliveries": deliveries,
        "wall_s": round(wall, 3),
        "deliveries_per_s": round(deliveries / wall, 1),
        "gaps": sum(r["gaps"] for r in results),
        "duplicates": sum(r["duplicates"] for r in results),
        "incomplete_subscribers": sum(n != events_in_run for n in per_subscriber),
        "event_delay": delays.in_ms() if delays else None,
        "live_event_delay": live_delays.in_ms() if live_delays else None,
        "client_cpu_s": round(sum(o.cpu_seconds for o in outcomes), 3),
        "client_cpu_us_per_delivery": round(
            sum(o.cpu_seconds for o in outcomes) / deliveries * 1e6, 1
        ),
    }
    figures.update(usage_figures(usage_before, usage_after, deliveries, "delivery"))
    delta = metrics_delta(metrics_before, metrics_after)
    if delta is not None:
        figures["server_metrics_delta"] = delta
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    server_options(parser)
    parser.set_defaults(steps=None)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=2000,
                        help="about how many events the run emits (started server; sets its "
                             "steps unless --steps is given; with --url, sizes the progress bar)")
    parser.add_argument("--run-seconds", type=float, default=10.0,
                        help="how long the run lasts (started server)")


def _argument_problems(args: argparse.Namespace) -> list[str]:
    problems = [
        f"--{name} must be at least 1, got {getattr(args, name)}"
        for name in ("subscribers", "processes", "events")
        if getattr(args, name) < 1
    ]
    if args.progress < 0:
        problems.append(f"--progress must be zero or more, got {args.progress}")
    if args.steps is not None and args.steps < 1:
        problems.append(f"--steps must be at least 1, got {args.steps}")
    if not args.run_seconds > 0:
        problems.append(f"--run-seconds must be a positive number, got {args.run_seconds}")
    return problems


def command(args: argparse.Namespace) -> list[dict[str, Any]]:
    wrong = _argument_problems(args)
    if wrong:
        raise SystemExit("fanout: " + "; ".join(wrong))
    demo = demo_size(args.events, args.progress, args.run_seconds, args.steps)
    expected = args.events if args.url else demo.events_per_run
    with server_under_test(args, demo) as servers:
        figures = measure(servers, args.workflow_id, args.subscribers, args.processes, expected)
    parameters: dict[str, Any] = {
        "server": args.label, **target_parameters(args), "store": args.store,
        "subscribers": args.subscribers, "processes": args.processes,
    }
    if not args.url:
        parameters.update({"steps": demo.steps, "progress": demo.progress,
                           "step_delay": demo.step_delay, "run_seconds": args.run_seconds})
    entry = report.record("fanout", parameters, figures)
    report.append(args.results, entry)
    print(f"fanout: {args.label}, one run of {figures['events_in_run']:,} events "
          f"to {args.subscribers:,} subscribers")
    print(report.table(rows(figures)))
    return [entry]


def problems(figures: dict[str, Any], subscribers: int) -> list[str]:
    """What makes a fanout measurement wrong rather than slow."""
    found = []
    if figures["subscribers"] != subscribers:
        found.append(f"{figures['subscribers']} of {subscribers} subscribers finished")
    if figures["gaps"] or figures["duplicates"]:
        found.append(f"{figures['gaps']} gaps and {figures['duplicates']} duplicates")
    if figures["incomplete_subscribers"]:
        found.append(f"{figures['incomplete_subscribers']} subscribers missed events")
    return found


def rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    table = [
        ("subscribers", (f"{figures['subscribers']:,}, {figures['joined_live']:,} joined "
                         "while the run was live")),
        ("deliveries", f"{figures['deliveries']:,} in {figures['wall_s']:.2f} s"),
        ("deliveries/s", f"{figures['deliveries_per_s']:,.0f}"),
        ("gaps / duplicates", f"{figures['gaps']} / {figures['duplicates']}"),
        ("subscribers missing events", str(figures["incomplete_subscribers"])),
        ("client CPU", (f"{figures['client_cpu_s']:.2f} s = "
                        f"{figures['client_cpu_us_per_delivery']:.1f} us/delivery")),
    ]
    table += report.usage_rows(figures, "delivery")
    for name, label in (("event_delay", "event delay"), ("live_event_delay", "  of live events")):
        p = figures[name]
        if p:
            table.append((label, f"{report.latency_text(p)} ({p['count']:,} events)"))
    return table
