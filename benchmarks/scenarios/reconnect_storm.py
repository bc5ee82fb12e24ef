"""`reconnect-storm`: R clients drop and reconnect at random points while their runs go on.

Each client starts its own run on a fresh socket, reads a random number of live events, drops the
socket (a normal close), stays away until its run has advanced by about `--missed` events, and
reconnects on a fresh socket with `last_event_index` = the last index it received; then it reads
the catch-up and a random number of live events (1 to a quarter of `--missed`) and drops again,
until it has done its share of the `--reconnects`; after its last reconnect it reads to the run's
terminal event. A client has no way to see its run while away, so it sleeps `missed / rate`: the
rate starts at `--rate` (events/s per run; a started server's demo is sized to emit at that rate)
and is re-estimated after every catch-up from the `missed_events` the server announces and the
time the client was away. The missed counts reported are the server's own `missed_events`.

Catch-up latency: from sending `reconnect` until the event `last_event_index + missed_events` has
arrived; the part of it until the `catch_up` frame arrived (the server's answer, before the client
reads the missed events) is reported beside it. A reconnect to a run that has finished meanwhile
gets a `replay` (all events from 0), which is read to its end and counted under replays, not
catch-ups.

How gaps and duplicates are counted (every event of every connection goes through a Cursor):
- a catch-up or live connection owes the events from `last_event_index + 1` on, consecutively;
- a replay owes 0, 1, ... N-1: indices up to the client's last one are the replay's expected
  re-delivery (counted as `redelivered`), not duplicates;
- a gap is an index past the one owed (one per jump, whatever its width); a duplicate is an index
  before it;
- at the end the union of the indices a client received must be exactly 0..N-1 for its run's N
  events (`missing` counts the indices absent from it), and the run must end in WorkflowCompleted.
So with no fault, events received = the runs' events + redelivered, exactly.

With several servers (`--url` more than once, or `--nodes`), the clients start their runs on
them in turn, and each reconnect goes to one of them chosen at random (from a generator seeded by
the client's seed, apart from the one that draws its drops, so a seed drops alike whatever the
number of servers): a client hops between nodes.

Clients are spread over `--processes` worker processes. Figures: reconnects (catch-ups, replays,
nothing missed), gaps, duplicates, missing, runs not completed, catch-up latency percentiles,
missed events per catch-up (min, median, max), events received, client and server CPU (per
event received; each server's too), Redis's CPU and used_memory when its URL is known.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from actors.workflows.examples.content_creation import WORKFLOW_ID
from benchmarks import report
from benchmarks.lean_ws import ConnectionClosed, LeanWebSocket, open_websocket_url
from benchmarks.options import CLIENT_PROCESSES, positive_int, target_options
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
from benchmarks.wsclient import TERMINAL, Cursor, decode

JOB = "benchmarks.scenarios.reconnect_storm:client_job"
TICKS_PER_STEP = 17  # progress ticks per demo step: 20 events a step, emitted about evenly
RUN_SLACK = 1.1  # a started server's runs are this much longer than a client needs
STALL_S = 60.0  # a socket silent this long fails the scenario


class StormError(RuntimeError):
    """The server broke the protocol or went silent; the message names the run and the index."""


@attrs.frozen
class ClientPlan:
    seed: int
    reconnects: int
    missed: int  # events to miss while away
    rate: float  # first estimate of the run's events/s


def live_max(missed: int) -> int:
    """The most live events a client reads before dropping again (it reads 1 to this many)."""
    return max(1, missed // 4)


def demo_size(reconnects_per_client: int, missed: int, rate: float) -> DemoSize:
    """A started server's demo: about `rate` events/s per run, long enough for a client's share."""
    per_step = 3 + TICKS_PER_STEP
    needed = live_max(missed) + reconnects_per_client * (missed + live_max(missed))
    steps = math.ceil(needed * RUN_SLACK / per_step) + 1
    return DemoSize(steps, TICKS_PER_STEP, per_step / rate)


@attrs.define
class Follower:
    """One client's run, across all its connections."""

    missed: int  # events to miss while away
    rate: float  # estimate of the run's events/s
    run_id: str = ""
    last_index: int = -1  # the highest index received
    replayed_upto: int = -1  # on a replay connection, the last index received before it
    last_event_at: float = 0.0
    terminal_index: int | None = None
    terminal: str = ""
    seen: set[int] = attrs.Factory(set)
    events: int = 0
    redelivered: int = 0  # events a replay sent again, as it must
    gaps: int = 0
    duplicates: int = 0
    reconnects: int = 0
    catch_ups: int = 0
    replays: int = 0
    nothing_missed: int = 0
    catch_up_s: list[float] = attrs.Factory(list)
    answer_s: list[float] = attrs.Factory(list)  # reconnect -> the catch_up frame, per catch-up
    missed_events: list[int] = attrs.Factory(list)

    async def frame(self, ws: LeanWebSocket) -> dict[str, Any]:
        try:
            return decode(await ws.get_message(STALL_S))
        except trio.TooSlowError:
            raise StormError(
                f"run {self.run_id or '(not started)'}: no frame for {STALL_S:.0f} s "
                f"after event index {self.last_index}"
            ) from None
        except ConnectionClosed as closed:
            raise StormError(
                f"run {self.run_id or '(not started)'}: the server closed the socket "
                f"({closed.reason}) after event index {self.last_index}"
            ) from None

    def open_cursor(self, replay: bool) -> Cursor:
        """The cursor of a new connection: a replay owes 0..N-1 (re-delivering what the client
        has, up to its last index), any other connection owes what follows the last index."""
        self.replayed_upto = self.last_index if replay else -1
        return Cursor() if replay else Cursor(next_index=self.last_index + 1)

    def accept(self, event: dict[str, Any], cursor: Cursor) -> None:
        index = event["event_index"]
        before = (cursor.gaps, cursor.duplicates)
        cursor.accept(index)
        self.gaps += cursor.gaps - before[0]
        self.duplicates += cursor.duplicates - before[1]
        self.seen.add(index)
        self.events += 1
        self.redelivered += index <= self.replayed_upto
        self.last_index = max(self.last_index, index)
        self.last_event_at = time.perf_counter()
        if event.get("event") in TERMINAL:
            self.terminal_index, self.terminal = index, event["event"]

    async def event(self, ws: LeanWebSocket, cursor: Cursor) -> dict[str, Any]:
        """The next event frame (control frames in between are skipped; an error frame fails)."""
        while True:
            frame = await self.frame(ws)
            if "event_index" in frame:
                self.accept(frame, cursor)
                return frame
            if frame.get("event") == "error":
                raise StormError(f"run {self.run_id}: the server answered {frame.get('error')!r}")

    async def read_live(self, ws: LeanWebSocket, cursor: Cursor, count: int | None) -> None:
        """`count` more events, or up to the terminal event when None or when the run ends."""
        read = 0
        while self.terminal_index is None and (count is None or read < count):
            await self.event(ws, cursor)
            read += 1

    async def start(self, url: str, workflow_id: str, count: int | None) -> None:
        async with open_websocket_url(url) as ws:
            await self.frame(ws)  # connected
            await ws.send_message(json.dumps(
                {"action": "start-workflow", "workflow_id": workflow_id, "message": "storm"}
            ))
            cursor = self.open_cursor(replay=False)
            first = await self.event(ws, cursor)
            self.run_id = first.get("run_id", "")
            if not self.run_id:
                raise StormError(f"the first event of a new run carries no run_id: {first}")
            await self.read_live(ws, cursor, None if count is None else count - 1)

    async def away(self) -> None:
        """Until the run has emitted about `missed` events since the last one received."""
        if self.terminal_index is None:
            back = self.last_event_at + self.missed / self.rate
            await trio.sleep(max(0.0, back - time.perf_counter()))

    async def reconnect(self, url: str, count: int | None) -> None:
        async with open_websocket_url(url) as ws:
            await self.frame(ws)  # connected
            last, left = self.last_index, self.last_event_at
            sent = time.perf_counter()
            await ws.send_message(
                json.dumps({"action": "reconnect", "run_id": self.run_id, "last_event_index": last})
            )
            self.reconnects += 1
            opening = await self.frame(ws)
            answered = time.perf_counter()
            kind = opening.get("event")
            if kind == "replay":
                await self.read_replay(ws, opening)
                return
            cursor = self.open_cursor(replay=False)
            if kind == "catch_up":
                missed = int(opening["missed_events"])
                while cursor.next_index <= last + missed:
                    await self.event(ws, cursor)
                self.catch_up_s.append(time.perf_counter() - sent)
                self.answer_s.append(answered - sent)
                self.missed_events.append(missed)
                self.catch_ups += 1
                self.rate = (self.rate + missed / max(sent - left, 1e-3)) / 2
            elif kind == "subscribed":
                self.nothing_missed += 1
            else:
                raise StormError(
                    f"run {self.run_id}: reconnect with last_event_index {last} was answered "
                    f"{opening!r}, not catch_up, subscribed or replay"
                )
            await self.read_live(ws, cursor, count)

    async def read_replay(self, ws: LeanWebSocket, opening: dict[str, Any]) -> None:
        total = int(opening["total_events"])
        self.replays += 1
        cursor = self.open_cursor(replay=True)
        while cursor.next_index < total:
            await self.event(ws, cursor)
        if self.terminal_index != total - 1:
            raise StormError(
                f"run {self.run_id}: replay of {total} events did not end with its terminal event "
                f"(terminal index {self.terminal_index})"
            )

    def result(self) -> dict[str, Any]:
        total = (self.terminal_index + 1) if self.terminal_index is not None else 0
        return {
            "events": self.events,
            "redelivered": self.redelivered,
            "run_events": total,
            "gaps": self.gaps,
            "duplicates": self.duplicates,
            "missing": total - len(self.seen & set(range(total))),
            "completed": self.terminal == "WorkflowCompleted",
            "reconnects": self.reconnects,
            "catch_ups": self.catch_ups,
            "replays": self.replays,
            "nothing_missed": self.nothing_missed,
            "catch_up_s": self.catch_up_s,
            "answer_s": self.answer_s,
            "missed_events": self.missed_events,
        }


async def storm_client(
    url: str, urls: list[str], workflow_id: str, plan: ClientPlan, tick: Callable[[int], None]
) -> dict[str, Any]:
    """One client: start a run at `url`, then drop and reconnect `plan.reconnects` times, each
    time to one of `urls` chosen at random; its result."""
    rng = random.Random(plan.seed)
    hops = random.Random(f"{plan.seed} urls")
    most = live_max(plan.missed)
    follower = Follower(plan.missed, plan.rate)
    await follower.start(url, workflow_id, rng.randint(1, most) if plan.reconnects else None)
    for done in range(1, plan.reconnects + 1):
        await follower.away()
        count = None if done == plan.reconnects else rng.randint(1, most)
        await follower.reconnect(hops.choice(urls), count)
        tick(1)
    return follower.result()


async def client_job(share: dict[str, Any], tick: Callable[[int], None]) -> dict[str, Any]:
    results: list[dict[str, Any]] = []

    async def one(index: int, plan: ClientPlan) -> None:
        url = url_of(share, index)
        results.append(await storm_client(url, share["urls"], share["workflow_id"], plan, tick))

    async with trio.open_nursery() as nursery:
        for index, plan in enumerate(share["plans"]):
            nursery.start_soon(one, index, ClientPlan(**plan))
    return {"clients": results}


def plans_for(
    clients: int, reconnects: int, missed: int, rate: float, seed: int
) -> list[ClientPlan]:
    """`reconnects` shared as evenly as can be by `clients` clients, each with its own seed."""
    seeds = random.Random(seed)
    base, extra = divmod(reconnects, clients)
    return [
        ClientPlan(seeds.randrange(2**32), base + (1 if i < extra else 0), missed, rate)
        for i in range(clients)
    ]


def measure(
    servers: Servers, workflow_id: str, plans: list[ClientPlan], processes: int
) -> dict[str, Any]:
    """One storm, its clients spread over `processes` worker processes; returns its figures."""
    counts = split(len(plans), processes)
    shares = [
        {"workflow_id": workflow_id,
         "plans": [attrs.asdict(p) for p in plans[urls["first"]:urls["first"] + count]], **urls}
        for count, urls in zip(counts, in_turn(servers.ws_urls, counts), strict=True)
    ]
    total = sum(p.reconnects for p in plans)
    metrics_before, usage_before = servers.metrics(), servers.usage()
    started = time.perf_counter()
    outcomes = run_workers(JOB, shares, total=total, unit="reconnects", label="reconnect-storm")
    wall = time.perf_counter() - started
    usage_after, metrics_after = servers.usage(), servers.metrics()
    clients = [c for o in outcomes for c in o.result["clients"]]
    events = sum(c["events"] for c in clients)
    missed = sorted(m for c in clients for m in c["missed_events"])
    latency = Percentiles.of(x for c in clients for x in c["catch_up_s"])
    answer = Percentiles.of(x for c in clients for x in c["answer_s"])
    client_cpu = sum(o.cpu_seconds for o in outcomes)
    figures: dict[str, Any] = {
        "clients": len(clients),
        "reconnects": sum(c["reconnects"] for c in clients),
        "catch_ups": sum(c["catch_ups"] for c in clients),
        "replays": sum(c["replays"] for c in clients),
        "nothing_missed": sum(c["nothing_missed"] for c in clients),
        "events": events,
        "redelivered": sum(c["redelivered"] for c in clients),
        "run_events": sum(c["run_events"] for c in clients),
        "wall_s": round(wall, 3),
        "events_per_s": round(events / wall, 1),
        "gaps": sum(c["gaps"] for c in clients),
        "duplicates": sum(c["duplicates"] for c in clients),
        "missing": sum(c["missing"] for c in clients),
        "not_completed": sum(not c["completed"] for c in clients),
        "catch_up_latency": latency.in_ms() if latency else None,
        "catch_up_answer_latency": answer.in_ms() if answer else None,
        "missed_events": {"min": missed[0], "median": statistics.median_low(missed),
                          "max": missed[-1]} if missed else None,
        "client_cpu_s": round(client_cpu, 3),
        "client_core_share": round(client_cpu / wall, 3),
    }
    figures.update(usage_figures(usage_before, usage_after, events))
    delta = metrics_delta(metrics_before, metrics_after)
    if delta is not None:
        figures["server_metrics_delta"] = delta
    return figures


def rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    reconnects = (
        f"{figures['reconnects']:,} (catch-ups {figures['catch_ups']:,}, "
        f"replays {figures['replays']:,}, nothing missed {figures['nothing_missed']:,})"
    )
    faults = f"{figures['gaps']} / {figures['duplicates']} / {figures['missing']}"
    table = [
        ("reconnects", reconnects),
        ("gaps / duplicates / missing", faults),
        ("runs not completed", f"{figures['not_completed']} of {figures['clients']}"),
    ]
    for key, name in (("catch_up_latency", "catch-up latency"),
                      ("catch_up_answer_latency", "of which to the catch_up frame")):
        latency = figures.get(key)
        if latency:
            table.append((name, report.latency_text(latency)))
    missed = figures["missed_events"]
    if missed:
        spread = ", ".join(f"{name} {missed[name]:,}" for name in ("min", "median", "max"))
        table.append(("missed events per catch-up", spread))
    received = f"{figures['events']:,} in {figures['wall_s']:.2f} s"
    table.append(("events received", f"{received} ({figures['events_per_s']:,.0f}/s)"))
    client = f"{figures['client_cpu_s']:.2f} s ({figures['client_core_share'] * 100:.0f}% of a core)"
    table.append(("client CPU", client))
    return table + report.usage_rows(figures, "event")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise ValueError(text)
    return value


_positive_float.__name__ = "positive number"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=positive_int, default=100, help="clients, one run each")
    parser.add_argument("--reconnects", type=positive_int, default=1000,
                        help="reconnects in all, shared by the clients")
    parser.add_argument("--missed", type=positive_int, default=1000,
                        help="events a client misses each time it is away")
    parser.add_argument("--rate", type=_positive_float, default=40.0,
                        help="events/s each run emits (a started server's demo is sized to it; "
                             "with --url, the first guess, corrected after each catch-up)")
    parser.add_argument("--seed", type=int, help="seed of the clients' random drops and of the servers they "
                             "reconnect to (random)")
    target_options(parser)
    parser.add_argument("--workflow-id", default=WORKFLOW_ID)
    parser.add_argument(
        "--processes", type=positive_int, default=CLIENT_PROCESSES, help="client processes"
    )
    parser.add_argument("--results", type=Path, default=report.DEFAULT_RESULTS)
    parser.add_argument("--label", default="runcast", help="name of the server in the records")


def command(args: argparse.Namespace) -> list[dict[str, Any]]:
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    plans = plans_for(args.clients, args.reconnects, args.missed, args.rate, seed)
    demo = demo_size(max(p.reconnects for p in plans), args.missed, args.rate)
    with server_under_test(args, demo) as servers:
        figures = measure(servers, args.workflow_id, plans, args.processes)
    parameters: dict[str, Any] = {
        "server": args.label, **target_parameters(args), "clients": args.clients,
        "reconnects": args.reconnects, "missed": args.missed, "rate": args.rate, "seed": seed,
        "processes": args.processes,
    }
    if not args.url:
        parameters.update(store=args.store, steps=demo.steps, progress=demo.progress,
                          step_delay=demo.step_delay)
    entry = report.record("reconnect-storm", parameters, figures)
    report.append(args.results, entry)
    print(f"reconnect-storm: {args.label}, {args.clients} clients, {args.reconnects} reconnects, "
          f"about {args.missed} events missed each, seed {seed}")
    print(report.table(rows(figures)))
    return [entry]
