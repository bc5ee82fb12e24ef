"""`node-loss`: one of two nodes on one Redis is killed (SIGKILL) while runs it owns are followed
from the other node; how long until each run's end reaches its follower.

The scenario starts its own cluster: two `runcast serve` processes, node-1 and node-2, each on
its own free loopback port, on the `--store redis://HOST:PORT/DB` given (start the redis-server
yourself), with `--lease-ttl` and `--lease-renew` (2 s and 0.5 s by default, far below runcast's
own defaults of 10 s and 3 s, so that the scenario is quick). Then `--kills` times, the victim
being node-1 and node-2 in turn:

1. `--runs` runs start on the victim, each on its own socket, which reads the run's first
   `HANDOFF_EVENTS` events and closes (the run goes on);
2. each run is followed from the survivor: a fresh socket sends `reconnect` with the last index
   its starter got, and reads the catch-up (if any), `subscribed` and the live events;
3. once every follower is subscribed, the victim gets SIGKILL;
4. each follower reads on until its run's terminal event: the detection time of a run is from
   the moment before the kill to that event's arrival at its follower;
5. once every run has ended (or `bound + ENDS_SLACK_S` has passed), the victim is started
   again under the same node id and on the same port, and the time from its start to its first
   200 on `/health` is measured; meanwhile the followers read on (for `SETTLE_SWEEPS` sweeps at
   least); then each run is replayed from the survivor, its record read there (which node closed
   it), and the follower sockets are closed.

With `--restart kill` the victim is started again right after the kill instead, as a supervisor
would: it waits for its old lease to expire before it serves (so its time to /health includes
that wait), and once it has its lease it closes its old runs itself at once, racing the
survivor's sweep; the figures say which node closed how many. With the default (`end`) every
run is closed by the survivor's sweep: a node lost for good.

The bound: the victim renewed its lease at most `lease_renew` before the kill, so the lease is
gone at most `lease_ttl` after it; every node sweeps for runs of dead nodes every 0.5 - 1 x
`lease_renew` seconds (jittered), so the survivor finds them within another `lease_renew`, and
the end is written and published in some milliseconds: bound = lease_ttl + 2 x lease_renew (3 s
by default), the second sweep being the margin. The detection time
scales with the lease: with runcast's defaults (10 s, renewed every 3 s) expect about 10 - 13 s,
bound 16 s.

Checks of each run (counted, and the scenario fails on any): the starter's events are 0..L
each once; the follower's are L+1, L+2, ... each once with no gap (`Cursor`), and the last of
them is the run's one terminal event, a `WorkflowError` with reason `interrupted` (`wrong_end`
otherwise, `not_ended` if none came); nothing of the run comes on the follower's socket after
it until the round ends (`after_terminal`); no error frame comes (`errors`); the survivor's replay
of the run (status ERROR) is the starter's frames followed by the follower's, byte for byte
(`replay_mismatch`).

Figures: detection time percentiles over every run, how many runs met the bound, how many runs
the survivor closed (`closed_by_survivor`; the others the restarted victim, with `--restart
kill`), the restarts' time to /health (and the first start's), the faults, and one row per kill
(victim, each run's detection time, which node closed each run, the restart's time to /health,
the faults).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from actors.workflows.examples.content_creation import WORKFLOW_ID
from benchmarks import report
from benchmarks.lean_ws import ConnectionClosed, LeanWebSocket, open_websocket_url
from benchmarks.options import positive_int, redis_url
from benchmarks.progress import ProgressBar
from benchmarks.report import Percentiles
from benchmarks.server import DemoSize, free_ports, serve_command
from benchmarks.wsclient import TERMINAL, Cursor, decode

NODE_IDS = ("node-1", "node-2")
HANDOFF_EVENTS = 3  # events a starter reads on the victim before its run is followed elsewhere
RUN_SECONDS = 60.0  # a run lasts at least this long (it is killed long before)
STALL_S = 30.0  # a socket silent this long before the kill fails the scenario
ENDS_SLACK_S = 30.0  # how long past the bound the followers wait for their runs' ends
SETTLE_SWEEPS = 2  # sweeps the followers read on after the ends, for anything after them
HEALTH_TIMEOUT_S = 60.0
FAULTS = ("gaps", "duplicates", "not_ended", "wrong_end", "after_terminal", "errors",
          "replay_mismatch")


class NodeLossError(RuntimeError):
    """The cluster could not be set up or a node would not serve; the message says why."""


def bound_s(lease_ttl: float, lease_renew: float) -> float:
    """The longest a killed node's runs may take to end at another node's follower."""
    return lease_ttl + 2 * lease_renew


def demo_size(step_delay: float, progress: int) -> DemoSize:
    """A demo run lasting at least RUN_SECONDS at `step_delay` seconds a step."""
    return DemoSize(max(1, math.ceil(RUN_SECONDS / step_delay)), progress, step_delay)


@attrs.define
class NodeProcess:
    """One `runcast serve` of the cluster, started (and started again) under its node id on its
    port; its stderr appended to `log`."""

    node_id: str
    port: int
    command: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # time.monotonic() of the last start

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/workflows/ws"

    def start(self) -> None:
        self.started_at = time.monotonic()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.command, "--port", str(self.port), "--node-id", self.node_id],
                stdout=subprocess.DEVNULL, stderr=log,
            )

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM (it gives its lease up), SIGKILL if it is not gone within 60 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT_S) -> float:
        """Poll /health every 20 ms until it answers 200; the seconds from the node's start to
        then. Raises NodeLossError, with the end of the node's log, if it exits or takes over
        `timeout`."""
        began = time.monotonic()
        while True:
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=1):
                    return time.monotonic() - self.started_at
            except OSError:  # not listening yet, or 503 while it has no lease
                pass
            assert self.process is not None
            if self.process.poll() is not None:
                raise NodeLossError(f"{self.node_id} exited with {self.process.returncode} "
                                    f"before serving:\n{self.log_tail()}")
            if time.monotonic() - began > timeout:
                raise NodeLossError(f"{self.node_id}: /health did not answer 200 within "
                                    f"{timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.02)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@attrs.define
class Cluster:
    nodes: list[NodeProcess]
    first_start_s: list[float] = attrs.Factory(list)  # each node's first start -> /health 200
    tracebacks: int = 0  # in the nodes' logs, counted once they are stopped


@contextmanager
def cluster(store: str, demo: DemoSize, lease_ttl: float, lease_renew: float,
            logs: Path | None) -> Iterator[Cluster]:
    """node-1 and node-2 serving on `store`, each started and answering /health. Both are stopped
    (SIGTERM) at the end, and the tracebacks in their logs counted; their stderr goes to
    `<logs>/<node id>.log` (a temporary directory by default)."""
    with tempfile.TemporaryDirectory(prefix="runcast-node-loss-") as tmp:
        directory = logs or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        command = serve_command(demo, store) + [
            "--lease-ttl", str(lease_ttl), "--lease-renew", str(lease_renew)]
        nodes = [NodeProcess(node_id, port, command, directory / f"{node_id}.log")
                 for node_id, port in zip(NODE_IDS, free_ports(len(NODE_IDS)), strict=True)]
        started = Cluster(nodes)
        try:
            for node in nodes:
                node.log.write_bytes(b"")
                node.start()
            started.first_start_s = [node.wait_healthy() for node in nodes]
            yield started
        finally:
            for node in nodes:
                node.stop()
            started.tracebacks = sum(
                node.log.read_text(errors="replace").count("Traceback") for node in nodes
            )


@attrs.define
class Followed:
    """One run: what its starter got on the victim, and what its follower got on the survivor."""

    run_id: str
    starter: list[str]  # raw event frames, indices 0..L
    follower: list[str] = attrs.Factory(list)  # raw event frames from L+1 on, up to the terminal
    cursor: Cursor = attrs.Factory(Cursor)
    subscribed: trio.Event = attrs.Factory(trio.Event)
    ended: trio.Event = attrs.Factory(trio.Event)
    terminal: dict[str, Any] | None = None
    terminal_at: float | None = None  # time.monotonic() when the terminal event was read
    after_terminal: int = 0
    errors: list[str] = attrs.Factory(list)

    @property
    def last_index(self) -> int:
        return int(decode(self.starter[-1])["event_index"])

    def take(self, text: str, event: dict[str, Any]) -> None:
        if self.terminal is not None:
            self.after_terminal += 1
            return
        self.cursor.accept(int(event["event_index"]))
        self.follower.append(text)
        if event.get("event") in TERMINAL:
            self.terminal, self.terminal_at = event, time.monotonic()
            self.ended.set()


async def _frame(ws: LeanWebSocket, what: str) -> str:
    try:
        return await ws.get_message(STALL_S)
    except trio.TooSlowError:
        raise NodeLossError(f"{what}: no frame for {STALL_S:.0f} s") from None


async def _send(ws: LeanWebSocket, message: dict[str, Any]) -> None:
    await ws.send_message(json.dumps(message))


async def start_run(url: str, workflow_id: str) -> Followed:
    """Start a run at `url`, read its first HANDOFF_EVENTS events, and close the socket."""
    async with open_websocket_url(url) as ws:
        await _frame(ws, "start: connected")
        await _send(ws, {"action": "start-workflow", "workflow_id": workflow_id,
                         "message": "node-loss"})
        frames: list[str] = []
        while len(frames) < HANDOFF_EVENTS:
            text = await _frame(ws, f"start on {url}")
            event = decode(text)
            if "event_index" in event:
                if event.get("event") in TERMINAL:
                    raise NodeLossError(f"run {event.get('run_id')} ended at once: {event}")
                frames.append(text)
            elif event.get("event") in ("error", "auth_error"):
                raise NodeLossError(f"start-workflow at {url} refused: {event.get('error')}")
    return Followed(str(decode(frames[0])["run_id"]), frames)


async def follow(url: str, run: Followed) -> None:
    """Follow `run` at `url` from the starter's last index until cancelled."""
    async with open_websocket_url(url) as ws:
        await _frame(ws, f"follow {run.run_id}: connected")
        await _send(ws, {"action": "reconnect", "run_id": run.run_id,
                         "last_event_index": run.last_index})
        run.cursor = Cursor(next_index=run.last_index + 1)
        try:
            while True:
                text = await ws.get_message()
                event = decode(text)
                kind = event.get("event")
                if "event_index" in event:
                    if event.get("run_id") != run.run_id:
                        run.errors.append(f"an event of another run: {text[:200]}")
                    else:
                        run.take(text, event)
                elif kind == "subscribed":
                    run.subscribed.set()
                elif kind == "error" or (kind != "catch_up" and not run.subscribed.is_set()):
                    run.errors.append(f"follower of {run.run_id} at {url} got {text[:200]}")
                    run.subscribed.set()  # not waited for in vain
        except ConnectionClosed as closed:
            if run.terminal is None:
                run.errors.append(f"follower of {run.run_id}: the survivor closed its socket "
                                  f"({closed.code} {closed.reason})")
            await trio.sleep_forever()  # until the round ends


async def replay(url: str, run_id: str) -> tuple[dict[str, Any], list[str]]:
    """The opening frame of a `reconnect` from -1 to the (finished) `run_id` at `url`, and the
    event frames of its replay (none if the opening is not `replay`)."""
    async with open_websocket_url(url) as ws:
        await _frame(ws, f"replay {run_id}: connected")
        await _send(ws, {"action": "reconnect", "run_id": run_id, "last_event_index": -1})
        opening = decode(await _frame(ws, f"replay {run_id}"))
        frames: list[str] = []
        if opening.get("event") == "replay":
            while len(frames) < int(opening["total_events"]):
                text = await _frame(ws, f"replay {run_id}")
                if "event_index" in decode(text):
                    frames.append(text)
    return opening, frames


def closed_by(node: NodeProcess, run_id: str) -> str | None:
    """The node that wrote the end of `run_id` (its record's `node`, as `node` reports it)."""
    with urllib.request.urlopen(f"{node.base_url}/runs/{run_id}", timeout=10) as answer:
        record: dict[str, Any] = json.load(answer)
    return record.get("node")


def run_faults(run: Followed, opening: dict[str, Any], history: list[str]) -> dict[str, int]:
    """What is wrong with one followed run, by the kinds of FAULTS (see the module's doc)."""
    starter = Cursor()
    for text in run.starter:
        starter.accept(int(decode(text)["event_index"]))
    terminal = run.terminal
    right_end = (terminal is not None and terminal.get("event") == "WorkflowError"
                 and terminal.get("reason") == "interrupted")
    whole = (opening.get("event") == "replay" and opening.get("status") == "ERROR"
             and history == run.starter + run.follower)
    return {
        "gaps": starter.gaps + run.cursor.gaps,
        "duplicates": starter.duplicates + run.cursor.duplicates,
        "not_ended": int(terminal is None),
        "wrong_end": int(terminal is not None and not right_end),
        "after_terminal": run.after_terminal,
        "errors": len(run.errors),
        "replay_mismatch": int(terminal is not None and not whole),
    }


@attrs.frozen
class Plan:
    workflow_id: str
    runs: int
    lease_ttl: float
    lease_renew: float
    restart: str  # "kill" or "end"

    @property
    def bound_s(self) -> float:
        return bound_s(self.lease_ttl, self.lease_renew)


async def one_kill(number: int, victim: NodeProcess, survivor: NodeProcess,
                   plan: Plan) -> dict[str, Any]:
    """Start the runs on `victim`, follow them from `survivor`, kill `victim` and start it again;
    the round's row."""
    runs: list[Followed] = []

    async def start_one() -> None:
        runs.append(await start_run(victim.ws_url, plan.workflow_id))

    async with trio.open_nursery() as starting:
        for _ in range(plan.runs):
            starting.start_soon(start_one)
    restart_s: float | None = None
    restarted = trio.Event()

    async def restart() -> None:
        nonlocal restart_s
        victim.start()
        restart_s = await trio.to_thread.run_sync(victim.wait_healthy)
        restarted.set()

    async with trio.open_nursery() as nursery:
        for run in runs:
            nursery.start_soon(follow, survivor.ws_url, run)
        with trio.fail_after(STALL_S):
            for run in runs:
                await run.subscribed.wait()
        killed_at = time.monotonic()
        victim.kill()
        if plan.restart == "kill":
            nursery.start_soon(restart)
        with trio.move_on_after(plan.bound_s + ENDS_SLACK_S):
            for run in runs:
                await run.ended.wait()
        if plan.restart == "end":
            nursery.start_soon(restart)
        await trio.sleep(SETTLE_SWEEPS * plan.lease_renew)  # nothing more may come meanwhile
        await restarted.wait()
        replays = [await replay(survivor.ws_url, run.run_id) for run in runs]
        closers = [await trio.to_thread.run_sync(closed_by, survivor, run.run_id) for run in runs]
        nursery.cancel_scope.cancel()
    detection = [None if run.terminal_at is None else run.terminal_at - killed_at for run in runs]
    faults = {kind: 0 for kind in FAULTS}
    for run, (opening, history) in zip(runs, replays, strict=True):
        for kind, count in run_faults(run, opening, history).items():
            faults[kind] += count
    return {
        "kill": number,
        "victim": victim.node_id,
        "survivor": survivor.node_id,
        "runs": len(runs),
        "run_ids": [run.run_id for run in runs],
        "events_followed": sum(len(run.follower) for run in runs),
        "detection_s": [None if d is None else round(d, 4) for d in detection],
        "closed_by": closers,
        "closed_by_survivor": closers.count(survivor.node_id),
        "within_bound": sum(d is not None and d <= plan.bound_s for d in detection),
        "restart": plan.restart,
        "restart_to_health_s": None if restart_s is None else round(restart_s, 3),
        "faults": faults,
        "errors": [error for run in runs for error in run.errors][:10],
    }


async def kills(nodes: list[NodeProcess], plan: Plan, count: int) -> list[dict[str, Any]]:
    """`count` rounds, the victim node-1, node-2, node-1, ...; a progress bar meanwhile."""
    rows: list[dict[str, Any]] = []
    bar = ProgressBar("node-loss", count, "kills")

    async def show() -> None:
        while True:
            bar.show(len(rows))
            await trio.sleep(0.2)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(show)
        for number in range(count):
            victim, survivor = nodes[number % 2], nodes[(number + 1) % 2]
            rows.append(await one_kill(number + 1, victim, survivor, plan))
        nursery.cancel_scope.cancel()
    bar.finish(len(rows))
    return rows


def figures_of(rows: list[dict[str, Any]], plan: Plan, first_start_s: list[float],
               wall_s: float) -> dict[str, Any]:
    detected = [d for row in rows for d in row["detection_s"] if d is not None]
    runs = sum(row["runs"] for row in rows)
    within = sum(row["within_bound"] for row in rows)
    detection = Percentiles.of(detected)
    restarts = Percentiles.of(r["restart_to_health_s"] for r in rows
                              if r["restart_to_health_s"] is not None)
    return {
        "kills": len(rows),
        "runs": runs,
        "bound_s": plan.bound_s,
        "detection": detection.in_ms() if detection else None,
        "within_bound": within,
        "all_within_bound": within == runs,
        "closed_by_survivor": sum(row["closed_by_survivor"] for row in rows),
        "restart_to_health": restarts.in_ms() if restarts else None,
        "first_start_to_health_s": [round(s, 3) for s in first_start_s],
        "events_followed": sum(row["events_followed"] for row in rows),
        **{kind: sum(row["faults"][kind] for row in rows) for kind in FAULTS},
        "wall_s": round(wall_s, 3),
        "kill_rows": rows,
    }


def _seconds(in_ms: dict[str, float]) -> str:
    return ", ".join(f"{name} {in_ms[name + '_ms'] / 1000:.3f} s"
                     for name in ("p50", "p90", "p99", "max"))


def rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    bound = figures["bound_s"]
    met = "every run met it" if figures["all_within_bound"] else "NOT every run met it"
    table = [
        ("kills / runs", f"{figures['kills']} / {figures['runs']}"),
        ("bound (ttl + 2 x renew)", f"{bound:g} s: {figures['within_bound']} of "
                                    f"{figures['runs']} runs within it, {met}"),
    ]
    if figures["detection"]:
        table.append(("kill -> terminal at follower", _seconds(figures["detection"])))
    if figures["restart_to_health"]:
        table.append(("restart -> /health 200", _seconds(figures["restart_to_health"])))
    first = ", ".join(f"{s:.2f} s" for s in figures["first_start_to_health_s"])
    table.append(("first start -> /health 200", first))
    table.append(("closed by the survivor", f"{figures['closed_by_survivor']} of "
                                            f"{figures['runs']} runs"))
    table.append(("events followed", f"{figures['events_followed']:,}"))
    table.append(("faults", ", ".join(f"{kind} {figures[kind]}" for kind in FAULTS)))
    return table


def problems(figures: dict[str, Any]) -> list[str]:
    """What makes a node-loss measurement wrong rather than slow (missing the bound is not)."""
    return [f"{kind}: {figures[kind]}" for kind in FAULTS if figures[kind]]


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or math.isinf(value):
        raise ValueError(text)
    return value


_positive_float.__name__ = "positive number of seconds"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=redis_url, required=True,
                        help="the Redis the two nodes share (redis://HOST:PORT/DB); start it "
                             "yourself")
    parser.add_argument("--kills", type=positive_int, default=20,
                        help="times a node is killed, node-1 and node-2 in turn [default: 20]")
    parser.add_argument("--runs", type=positive_int, default=10,
                        help="runs on the victim at each kill [default: 10]")
    parser.add_argument("--lease-ttl", type=_positive_float, default=2.0,
                        help="the nodes' --lease-ttl [default: 2]")
    parser.add_argument("--lease-renew", type=_positive_float, default=0.5,
                        help="the nodes' --lease-renew, also their sweep period [default: 0.5]")
    parser.add_argument("--restart", choices=("end", "kill"), default="end",
                        help="start the victim again once its runs have ended (closed by the "
                             "survivor), or right after the kill, as a supervisor would (it "
                             "waits for its old lease, then closes its old runs itself) "
                             "[default: end]")
    parser.add_argument("--step-delay", type=_positive_float, default=0.25,
                        help="seconds a demo step takes (a run lasts over a minute)")
    parser.add_argument("--progress", type=positive_int, default=1,
                        help="progress events per demo step")
    parser.add_argument("--workflow-id", default=WORKFLOW_ID)
    parser.add_argument("--logs", type=Path,
                        help="directory for the nodes' stderr (default: a temporary one)")
    parser.add_argument("--results", type=Path, default=report.DEFAULT_RESULTS)
    parser.add_argument("--label", default="runcast", help="name of the server in the records")


def command(args: argparse.Namespace) -> list[dict[str, Any]]:
    if not args.lease_renew < args.lease_ttl:
        raise SystemExit(f"node-loss: --lease-renew ({args.lease_renew:g}) must be shorter than "
                         f"--lease-ttl ({args.lease_ttl:g})")
    demo = demo_size(args.step_delay, args.progress)
    plan = Plan(args.workflow_id, args.runs, args.lease_ttl, args.lease_renew, args.restart)
    with cluster(args.store, demo, args.lease_ttl, args.lease_renew, args.logs) as nodes:
        began = time.monotonic()
        kill_rows = trio.run(kills, nodes.nodes, plan, args.kills)
        wall = time.monotonic() - began
    figures = figures_of(kill_rows, plan, nodes.first_start_s, wall)
    figures["node_log_tracebacks"] = tracebacks = nodes.tracebacks
    parameters = {
        "server": args.label, "url": "started", "nodes": len(NODE_IDS), "redis": args.store,
        "store": args.store, "kills": args.kills, "runs": args.runs, "lease_ttl": args.lease_ttl,
        "lease_renew": args.lease_renew, "restart": args.restart, "steps": demo.steps,
        "progress": demo.progress, "step_delay": demo.step_delay,
        "handoff_events": HANDOFF_EVENTS,
    }
    entry = report.record("node-loss", parameters, figures)
    report.append(args.results, entry)
    print(f"node-loss: {args.label}, 2 nodes on {args.store}, {args.kills} kills x {args.runs} "
          f"runs, lease {args.lease_ttl:g} s renewed every {args.lease_renew:g} s")
    print(report.table(rows(figures) + [("tracebacks in the nodes' logs", str(tracebacks))]))
    return [entry]
