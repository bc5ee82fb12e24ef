"""`runcast-bench <scenario> [options]`: run one benchmark scenario and report it.

Every scenario prints a progress bar while it runs and a summary table at the end, and appends
one JSON record per measurement to `--results` (benchmarks/results/results.jsonl by default).
Without `--url` the scenario starts its own `runcast serve` (SQLite store in a temporary
directory, demo workflow sized by `--steps` / `--progress`), or `--nodes N` of them on one
`--store redis://HOST:PORT/DB`; with `--url` it measures that server instead, any server that
speaks the workflow WebSocket protocol (give `--server-pid` for its CPU and memory figures, and
`--workflow-id` for the workflow to start), or several, `--url` once for each (and a
`--server-pid` for each, `--redis` for the Redis they share): the clients take them in turn.
On a Redis store the report gives Redis's own CPU and memory beside the servers'.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from benchmarks import bare_stack, dashboards, report
from benchmarks.options import CLIENT_PROCESSES, server_options
from benchmarks.scenarios import fanout, hold, inprocess, node_loss, reconnect_storm, throughput
from benchmarks.server import DemoSize, server_under_test, target_parameters
from web.tuning import tune_interpreter


def _positive_ints(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(v < 1 for v in values):
        raise ValueError(text)
    return values


_positive_ints.__name__ = "comma-separated positive integers"


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


_count.__name__ = "count (0 or more)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runcast-bench", description=__doc__.splitlines()[0])
    scenarios = parser.add_subparsers(dest="scenario", required=True)
    tp = scenarios.add_parser("throughput", help="N runs, C at a time, each over its own socket")
    server_options(tp)
    tp.add_argument("--runs", type=int, default=500)
    tp.add_argument("--concurrency", type=_positive_ints, default=[50],
                    help="one value, or several (10,50,100) for a sweep and its plot")
    tp.add_argument("--warmup", type=int, default=50, help="runs before measuring")
    tp.add_argument("--plot", type=Path, help="PNG of events/s and latency against concurrency")
    tp.add_argument(
        "--dashboards", type=_count, default=0, metavar="N",
        help="browser dashboards (/ui/, in chromium through Playwright) left on the runs list "
             "through the measurement, the servers in turn [default: 0]",
    )
    reconnect_storm.add_arguments(
        scenarios.add_parser(
            "reconnect-storm", help="R clients dropping and reconnecting while their runs go on"
        )
    )
    hold.add_arguments(
        scenarios.add_parser("hold", help="many live runs at once, each emitting slowly, some watched")
    )
    fanout.add_arguments(scenarios.add_parser("fanout", help="one run, S subscribers"))
    node_loss.add_arguments(
        scenarios.add_parser(
            "node-loss", help="two nodes on one Redis, one killed while its runs are followed "
                              "from the other: time until their ends arrive"
        )
    )
    ceiling = scenarios.add_parser(
        "ceiling", help="the bare stack: a Quart+Hypercorn route pushing pre-encoded frames"
    )
    ceiling.add_argument("--connections", type=int, default=100)
    ceiling.add_argument("--frames", type=int, default=2000, help="frames per connection")
    ceiling.add_argument("--processes", type=int, default=CLIENT_PROCESSES)
    ceiling.add_argument("--route", default=bare_stack.QUART_ROUTE, choices=bare_stack.ROUTES)
    ceiling.add_argument(
        "--transport", default=bare_stack.STOCK_TRANSPORT, choices=bare_stack.TRANSPORTS,
        help="stock Hypercorn (one send per frame), or runcast's coalescing Hypercorn worker",
    )
    ceiling.add_argument("--results", type=Path, default=report.DEFAULT_RESULTS)
    ip = scenarios.add_parser("inprocess", help="the actor runtime alone, no sockets")
    ip.add_argument("--stores", default="memory,sqlite", help="memory, sqlite, or both")
    ip.add_argument("--runs", type=int, default=1000)
    ip.add_argument("--events", type=int, default=200, help="events each run emits")
    ip.add_argument("--concurrency", type=int, default=100)
    ip.add_argument("--results", type=Path, default=report.DEFAULT_RESULTS)
    return parser


def throughput_command(args: argparse.Namespace) -> list[dict[str, Any]]:
    entries = []
    demo = DemoSize(args.steps, args.progress)
    if args.dashboards:
        dashboards.require()
    with server_under_test(args, demo) as servers, \
            dashboards.watching([node.base_url for node in servers.nodes],
                                args.dashboards) as watching:
        if watching:
            print(f"throughput: {args.dashboards} dashboards open on the runs list "
                  f"({', '.join(sorted(set(watching.urls)))})")
        if args.warmup:
            throughput.measure(servers, args.workflow_id, args.warmup, min(args.warmup, 50), 1)
        for concurrency in args.concurrency:
            figures = throughput.measure(
                servers, args.workflow_id, args.runs, concurrency, args.processes, watching
            )
            started = args.url is None  # an attached server's store and workflow are its own
            parameters = {
                "server": args.label, **target_parameters(args),
                "store": args.store if started else None,
                "steps": args.steps if started else None,
                "progress": args.progress if started else None,
                "runs": args.runs, "concurrency": concurrency, "processes": args.processes,
                "dashboards": args.dashboards,
            }
            entry = report.record("throughput", parameters, figures)
            report.append(args.results, entry)
            entries.append(entry)
            print(f"throughput: {args.label}, {args.runs} runs, concurrency {concurrency}")
            rows = throughput_rows(figures)
            if watching:
                rows += dashboards.dashboard_rows(figures, args.dashboards)
            print(report.table(rows))
    if args.plot:
        report.plot(entries, args.plot, f"throughput of {args.label} ({args.runs} runs each)")
        print(f"plot written to {args.plot}")
    return entries


def throughput_rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("events delivered", f"{figures['events']:,} in {figures['wall_s']:.2f} s"),
        ("events/s", f"{figures['events_per_s']:,.0f}"),
        ("gaps / duplicates", f"{figures['gaps']} / {figures['duplicates']}"),
        ("runs not completed", str(figures["not_completed"])),
        ("client CPU", f"{figures['client_cpu_s']:.2f} s = "
                       f"{figures['client_cpu_us_per_event']:.1f} us/event"),
    ]
    rows += report.usage_rows(figures, "event")
    for name in ("start_latency", "event_delay"):
        p = figures.get(name)
        if p:
            rows.append((name.replace("_", " "), report.latency_text(p)))
    return rows


def inprocess_command(args: argparse.Namespace) -> list[dict[str, Any]]:
    entries = []
    tune_interpreter()  # as `runcast serve` does
    for store in args.stores.split(","):
        figures = trio.run(inprocess.measure, store, args.runs, args.events, args.concurrency)
        parameters = {"store": store, "runs": args.runs, "events_per_run": args.events,
                      "concurrency": args.concurrency}
        entry = report.record("inprocess", parameters, figures)
        report.append(args.results, entry)
        entries.append(entry)
        print(f"inprocess: {store} store, {args.runs} runs of {args.events} events, "
              f"{args.concurrency} at a time")
        print(report.table([
            ("events appended and delivered", f"{figures['events']:,} in {figures['wall_s']:.2f} s"),
            ("events/s", f"{figures['events_per_s']:,.0f}"),
            ("CPU", f"{figures['cpu_s']:.2f} s = {figures['cpu_us_per_event']:.2f} us/event"),
        ]))
    return entries


def ceiling_command(args: argparse.Namespace) -> dict[str, Any]:
    result = bare_stack.measure_ceiling(
        args.connections, args.frames, args.processes, args.route, args.transport
    )
    figures = attrs.asdict(result)
    parameters = {key: figures.pop(key) for key in
                  ("connections", "frames_per_connection", "processes", "route", "transport")}
    entry = report.record("ceiling", parameters, figures)
    report.append(args.results, entry)
    print(f"ceiling: {args.route} on {args.transport}, "
          f"{args.connections} connections x {args.frames} frames")
    print(report.table([
        ("frames/s", f"{result.frames_per_second:,.0f} ({result.frames:,} in {result.wall_seconds:.2f} s)"),
        ("server CPU", f"{result.server_cpu_us_per_frame:.1f} us/frame "
                       f"({result.server_core_percent:.0f}% of a core)"),
        ("client CPU", f"{result.client_cpu_us_per_frame:.1f} us/frame"),
    ]))
    return entry


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.scenario == "ceiling":
        ceiling_command(args)
    elif args.scenario == "inprocess":
        inprocess_command(args)
    elif args.scenario == "hold":
        problems = hold.problems(hold.command(args)[0]["figures"], args.runs)
        if problems:
            sys.exit("hold: " + "; ".join(problems))
    elif args.scenario == "fanout":
        problems = fanout.problems(fanout.command(args)[0]["figures"], args.subscribers)
        if problems:
            sys.exit("fanout: " + "; ".join(problems))
    elif args.scenario == "node-loss":
        problems = node_loss.problems(node_loss.command(args)[0]["figures"])
        if problems:
            sys.exit("node-loss: " + "; ".join(problems))
    elif args.scenario == "reconnect-storm":
        entries = reconnect_storm.command(args)
        faults = ("gaps", "duplicates", "missing", "not_completed")
        if any(e["figures"][k] for e in entries for k in faults):
            sys.exit("reconnect-storm: gaps, duplicates, missing events or unfinished runs (see above)")
    elif args.scenario == "throughput":
        entries = throughput_command(args)
        failed = [e for e in entries if e["figures"]["gaps"] or e["figures"]["duplicates"]
                  or e["figures"]["not_completed"]]
        if failed:
            sys.exit("throughput: gaps, duplicates or runs that did not complete (see above)")


if __name__ == "__main__":
    main()
