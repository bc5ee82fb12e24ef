"""web/server.py: the whole server over time, with real servers, real SQLite files and real
WebSocket clients.

- graceful shutdown (guarantee 5): runs cancelled, subscribers get the final events, sockets
  closed with 1001, new connections refused; or, with a grace period, runs finish normally;
- restart durability (guarantee 3): finished runs replay byte for byte from a new server;
- hard crash (guarantee 3): a `runcast serve` process killed with SIGKILL; the next one closes the
  interrupted run with `WorkflowError(reason="interrupted")` and keeps every event a client saw;
- one server per store (guarantee 7): a second `runcast serve` on the same file, or on a busy
  port, exits with one line before it touches the file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, HandshakeError

from actors import RunInfo, RunStatus, WorkflowCatalog
from actors.store import AppendEvents, CreateRun, RunRecord
from actors.store.sqlite import open_sqlite_store
from actors.workflows.examples.content_creation import content_creation_workflow
from actors.workflows.steps import Step, StepContext, Workflow
from tests.clients import TERMINAL, JsonSocket, ws_client
from tests.conftest import RunningServer, StartServer
from tests.sqlite_files import stored_events

DEMO = "content-creation-workflow"
DEMO_EVENTS = 42  # 2 + 8 steps * (4 + 2 ticks)
SHUTDOWN_REASON = "server shutting down"


# -- helpers ------------------------------------------------------------------------------------


async def recv_raw(client: JsonSocket, timeout: float = 10.0) -> str:
    with trio.fail_after(timeout):
        message = await client.ws.get_message()
    assert isinstance(message, str), f"binary frame from the server: {message!r}"
    return message


async def recv_raw_until_terminal(client: JsonSocket, timeout: float = 30.0) -> list[str]:
    """Raw frames up to and including the next WorkflowCompleted / WorkflowError."""
    frames: list[str] = []
    with trio.fail_after(timeout):
        while True:
            frames.append(await recv_raw(client, timeout))
            if json.loads(frames[-1]).get("event") in TERMINAL:
                return frames


async def recv_raw_until_closed(client: JsonSocket, timeout: float = 30.0) -> tuple[list[str], int | None]:
    """Every frame until the server closes the socket; returns them and the close code."""
    frames: list[str] = []
    with trio.fail_after(timeout):
        while True:
            try:
                frames.append(await client.ws.get_message())  # type: ignore[arg-type]  # a text message: the server sends no bytes
            except ConnectionClosed as closed:
                return frames, closed.reason.code if closed.reason is not None else None


def parsed(frames: list[str]) -> list[dict[str, Any]]:
    return [json.loads(f) for f in frames]


def event_frames(frames: list[str]) -> list[str]:
    """Raw frames of run events only (control frames have no event_index)."""
    return [f for f in frames if "event_index" in json.loads(f)]


def indices(frames: list[str]) -> list[int]:
    return [json.loads(f)["event_index"] for f in event_frames(frames)]


async def read_until_index(client: JsonSocket, index: int, into: list[str]) -> None:
    """Append raw frames to `into` until one of event_index >= `index` has arrived."""
    while True:
        frame = await recv_raw(client)
        into.append(frame)
        if json.loads(frame).get("event_index", -1) >= index:
            return


async def start_run(client: JsonSocket, workflow_id: str = DEMO, message: str = "x") -> tuple[str, str]:
    """Start a run on `client`; returns (run_id, raw WorkflowStarted frame)."""
    await client.send({"action": "start-workflow", "workflow_id": workflow_id, "message": message})
    first = await recv_raw(client)
    body = json.loads(first)
    assert body["event"] == "WorkflowStarted" and body["event_index"] == 0, body
    return body["run_id"], first


async def replay_raw(url: str, run_id: str, last_event_index: int | None = None) -> tuple[dict[str, Any], list[str]]:
    """Reconnect to a finished run on a fresh socket: (replay header, raw event frames)."""
    async with ws_client(url) as client:
        await client.send({"action": "reconnect", "run_id": run_id, "last_event_index": last_event_index})
        header = json.loads(await recv_raw(client))
        frames = await recv_raw_until_terminal(client)
    return header, frames


def assert_contiguous(frames: list[str], first: int) -> None:
    assert indices(frames) == list(range(first, first + len(event_frames(frames))))


async def wait_until_refused(base_url: str) -> None:
    """Until the server's port refuses TCP connections (it has stopped accepting)."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    while True:
        try:
            stream = await trio.open_tcp_stream(host, int(port))
        except OSError:
            return
        await stream.aclose()
        await trio.sleep(0.01)


# -- graceful shutdown (guarantee 5) -------------------------------------------------------------


async def test_stop_cancels_running_runs_delivers_their_end_then_closes_1001_and_they_replay_cancelled(
    start_server: StartServer,
) -> None:
    """Runs mid-way at shutdown: every subscriber (starter, reconnected, one socket following two
    runs) gets WorkflowCancelled("server shutting down") then WorkflowCompleted, gap-free, then a
    1001 close (so does an idle socket); the port refuses connections; a new server replays both
    runs as CANCELLED with the very frames the clients saw."""
    server = await start_server(demo_step_delay=0.5)
    with trio.fail_after(60):
        async with (
            ws_client(server.ws_url) as starter_a,
            ws_client(server.ws_url) as starter_b,
            ws_client(server.ws_url) as watcher,
            ws_client(server.ws_url) as idle,
        ):
            run_a, first_a = await start_run(starter_a, message="a")
            run_b, first_b = await start_run(starter_b, message="b")
            seen: dict[str, list[str]] = {"a": [first_a], "b": [first_b], "watcher": [], "idle": []}
            # The watcher follows both runs on one socket: run a from index 1, run b in full.
            await watcher.send({"action": "reconnect", "run_id": run_a, "last_event_index": 0})
            await watcher.send({"action": "reconnect", "run_id": run_b, "last_event_index": None})
            await read_until_index(starter_a, 2, seen["a"])
            await read_until_index(starter_b, 2, seen["b"])
            closes: dict[str, int | None] = {}

            async def drain(name: str, client: JsonSocket) -> None:
                frames, code = await recv_raw_until_closed(client)
                seen[name].extend(frames)
                closes[name] = code

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, "a", starter_a)
                nursery.start_soon(drain, "b", starter_b)
                nursery.start_soon(drain, "watcher", watcher)
                nursery.start_soon(drain, "idle", idle)
                await server.stop()

        assert closes == {"a": 1001, "b": 1001, "watcher": 1001, "idle": 1001}
        assert seen["idle"] == []
        for name in ("a", "b"):
            frames = seen[name]
            assert event_frames(frames) == frames, f"{name}: control frames on the starter's socket"
            assert_contiguous(frames, 0)
            tail = parsed(frames)[-2:]
            assert tail[0]["event"] == "WorkflowCancelled" and tail[0]["reason"] == SHUTDOWN_REASON
            assert tail[1]["event"] == "WorkflowCompleted"
            assert sum(f["event"] == "WorkflowCancelled" for f in parsed(frames)) == 1
            assert len(frames) < DEMO_EVENTS, "the run was not mid-way when the server stopped"

        # The watcher's events, split per run, are the starters' (run a from index 1), gap-free.
        per_run = {
            run: [f for f in event_frames(seen["watcher"]) if json.loads(f)["run_id"] == run]
            for run in (run_a, run_b)
        }
        assert per_run[run_a] == seen["a"][1:]
        assert per_run[run_b] == seen["b"]
        assert json.loads(seen["watcher"][-1])["event"] == "WorkflowCompleted"

        # New connections are refused once the server has stopped.
        with pytest.raises(HandshakeError) as refused:
            async with ws_client(server.ws_url):
                pass
        assert isinstance(refused.value.__cause__, OSError)

        # A new server on the same SQLite file replays both runs, CANCELLED, frame for frame.
        second = await start_server(demo_step_delay=0.5)
        for run_id, name in ((run_a, "a"), (run_b, "b")):
            header, replay = await replay_raw(second.ws_url, run_id, last_event_index=3)
            assert header["event"] == "replay"
            assert header["status"] == "CANCELLED"
            assert header["total_events"] == len(seen[name])
            assert replay == seen[name]


async def test_stop_with_a_grace_period_lets_running_runs_complete(start_server: StartServer) -> None:
    """With `shutdown_grace` long enough, runs in progress at shutdown end with WorkflowCompleted
    and no WorkflowCancelled, their subscribers get every event, then a 1001 close; they replay
    as COMPLETED afterwards."""
    server = await start_server(shutdown_grace=5, demo_step_delay=0.05)
    with trio.fail_after(60):
        async with (
            ws_client(server.ws_url) as first,
            ws_client(server.ws_url) as second,
            ws_client(server.ws_url) as idle,
        ):
            run_1, frame_1 = await start_run(first, message="one")
            run_2, frame_2 = await start_run(second, message="two")
            seen: dict[str, list[str]] = {run_1: [frame_1], run_2: [frame_2]}
            closes: dict[str, int | None] = {}
            idle_frames: list[str] = []

            async def drain(run_id: str, client: JsonSocket) -> None:
                frames, code = await recv_raw_until_closed(client)
                seen[run_id].extend(frames)
                closes[run_id] = code

            async def start_during_grace() -> None:
                """Once the port refuses connections, an open socket may not start a run."""
                await wait_until_refused(server.base_url)
                await idle.send({"action": "start-workflow", "workflow_id": DEMO})
                frames, code = await recv_raw_until_closed(idle)
                idle_frames.extend(frames)
                closes["idle"] = code

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, run_1, first)
                nursery.start_soon(drain, run_2, second)
                nursery.start_soon(start_during_grace)
                await server.stop()

        assert closes == {run_1: 1001, run_2: 1001, "idle": 1001}
        assert parsed(idle_frames) == [
            {"event": "error", "error": "the server is shutting down and starts no new runs"}
        ]
        for run_id, frames in seen.items():
            kinds = [f["event"] for f in parsed(frames)]
            assert indices(frames) == list(range(DEMO_EVENTS)), run_id
            assert "WorkflowCancelled" not in kinds
            assert kinds[-1] == "WorkflowCompleted"
            assert parsed(frames)[-1].get("status") != "cancelled"

        again = await start_server()
        for run_id, frames in seen.items():
            header, replay = await replay_raw(again.ws_url, run_id)
            assert header["status"] == "COMPLETED"
            assert replay == frames


# -- restart durability (guarantee 3) ------------------------------------------------------------


def durability_catalog() -> WorkflowCatalog:
    """The demo (completes), a workflow that waits forever (to be cancelled), one that fails."""

    async def wait_forever(ctx: StepContext) -> str:
        await ctx.progress("waiting")
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def fail(ctx: StepContext) -> str:
        await ctx.progress("about to fail")
        raise RuntimeError("the step broke")

    catalog = WorkflowCatalog()
    catalog.add(content_creation_workflow(0.02))
    catalog.add(Workflow("forever", "Forever", [Step("wait", wait_forever)]))
    catalog.add(Workflow("failing", "Failing", [Step("fail", fail)]))
    return catalog


async def test_finished_runs_replay_byte_for_byte_after_a_restart(start_server: StartServer) -> None:
    """COMPLETED, CANCELLED and ERROR runs: the live frames, the replay before the restart and the
    replay from a new server on the same SQLite file are the same strings."""
    catalog = durability_catalog()
    server = await start_server(catalog=catalog)
    live: dict[str, list[str]] = {}
    statuses = {}
    with trio.fail_after(60):
        async with ws_client(server.ws_url) as client:
            run_id, first = await start_run(client, DEMO, "complete me")
            live[run_id] = [first, *await recv_raw_until_terminal(client)]
            statuses[run_id] = "COMPLETED"

            run_id, first = await start_run(client, "failing")
            live[run_id] = [first, *await recv_raw_until_terminal(client)]
            statuses[run_id] = "ERROR"

            run_id, first = await start_run(client, "forever")
            frames = [first]
            await read_until_index(client, 2, frames)  # StepStarted, StepProgress
            await client.send({"action": "cancel-run", "run_id": run_id})
            frames += await recv_raw_until_terminal(client)
            live[run_id] = event_frames(frames)
            statuses[run_id] = "CANCELLED"

        before = {run_id: await replay_raw(server.ws_url, run_id) for run_id in live}
        await server.stop()
        restarted = await start_server(catalog=durability_catalog())
        after = {run_id: await replay_raw(restarted.ws_url, run_id, 5) for run_id in live}

    for run_id, frames in live.items():
        assert_contiguous(frames, 0)
        header_before, replay_before = before[run_id]
        header_after, replay_after = after[run_id]
        assert replay_before == frames
        assert replay_after == frames
        assert header_before == header_after
        assert header_after["status"] == statuses[run_id]
        assert header_after["total_events"] == len(frames)
    kinds = {statuses[r]: [json.loads(f)["event"] for f in frames] for r, frames in live.items()}
    assert kinds["ERROR"][-2:] == ["StepError", "WorkflowError"]
    assert kinds["CANCELLED"][-2:] == ["WorkflowCancelled", "WorkflowCompleted"]
    assert len(kinds["COMPLETED"]) == DEMO_EVENTS


# -- hard crash (guarantee 3) --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def runcast_executable() -> Path:
    path = Path(sys.executable).parent / "runcast"
    assert path.exists(), f"runcast is not installed next to {sys.executable}"
    return path


class ServeProcess:
    """`runcast serve` in a subprocess on a free port, logging to a file."""

    def __init__(self, db: Path, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self._log_file = log.open("ab")
        self.process = subprocess.Popen(
            [
                str(runcast_executable()),
                "serve",
                "--port", str(self.port),
                "--store", f"sqlite:{db}",
                "--demo-step-delay", "0.3",
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("RUNCAST_")},
        )

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/workflows/ws"

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the port accepts connections (the process binds only once it is serving)."""
        with trio.fail_after(timeout):
            while True:
                assert self.process.poll() is None, f"runcast exited:\n{self.log.read_text()}"
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", self.port)
                except OSError:
                    await trio.sleep(0.05)
                    continue
                await stream.aclose()
                return

    async def wait_exit(self, timeout: float = 30.0) -> int:
        with trio.fail_after(timeout):
            return await trio.to_thread.run_sync(self.process.wait, abandon_on_cancel=True)

    async def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        await trio.to_thread.run_sync(self.process.wait)
        self._log_file.close()


async def test_after_sigkill_the_next_server_closes_the_run_as_interrupted_and_keeps_what_clients_saw(
    tmp_path: Path,
) -> None:
    """SIGKILL a `runcast serve` mid-run. Everything the client saw is in the file; the next
    process replays the run as ERROR ending with WorkflowError(reason="interrupted") at exactly
    the index after the last stored event, and the frames the client saw, identical."""
    db = tmp_path / "crash.db"
    first = ServeProcess(db, tmp_path / "first.log")
    second: ServeProcess | None = None
    try:
        with trio.fail_after(90):
            await first.wait_ready()
            seen: list[str] = []
            async with ws_client(first.ws_url) as client:
                run_id, started = await start_run(client, message="crash me")
                seen.append(started)
                await read_until_index(client, 4, seen)
                await first.kill()
                # Whatever was already on its way to the client counts as seen too.
                rest, _ = await recv_raw_until_closed(client)
                seen += rest
            assert first.process.returncode == -signal.SIGKILL
            assert_contiguous(seen, 0)
            assert not any(json.loads(f)["event"] in TERMINAL for f in seen)

            status, stored = stored_events(db, run_id)
            assert status == "RUNNING"
            assert stored[: len(seen)] == seen, "an event the client saw is not durable"

            second = ServeProcess(db, tmp_path / "second.log")
            await second.wait_ready()
            header, replay = await replay_raw(second.ws_url, run_id, last_event_index=2)
    finally:
        await first.kill()
        if second is not None:
            await second.kill()

    assert header["event"] == "replay"
    assert header["status"] == "ERROR"
    assert header["total_events"] == len(stored) + 1
    assert replay[: len(stored)] == stored
    assert replay[: len(seen)] == seen
    last = json.loads(replay[-1])
    assert last["event"] == "WorkflowError"
    assert last["reason"] == "interrupted"
    assert last["event_index"] == len(stored)
    first_event = json.loads(replay[0])
    for field in ("run_id", "session_id", "workflow_id", "workflow_name"):
        assert last[field] == first_event[field]
    assert indices(replay) == list(range(len(stored) + 1))


async def test_sigterm_stops_runcast_serve_in_order_and_the_next_process_replays_the_run_cancelled(
    tmp_path: Path,
) -> None:
    """The real signal path (guarantee 5): SIGTERM to `runcast serve` mid-run; the client gets
    WorkflowCancelled("server shutting down") and WorkflowCompleted, gap-free, then a 1001 close;
    the process exits 0 and the next one replays the run as CANCELLED, frame for frame."""
    db = tmp_path / "term.db"
    first = ServeProcess(db, tmp_path / "first.log")
    second: ServeProcess | None = None
    try:
        with trio.fail_after(90):
            await first.wait_ready()
            async with ws_client(first.ws_url) as client:
                run_id, started = await start_run(client, message="term me")
                seen = [started]
                await read_until_index(client, 2, seen)
                first.process.send_signal(signal.SIGTERM)
                rest, code = await recv_raw_until_closed(client)
                seen += rest
            assert await first.wait_exit() == 0, first.log.read_text()
            assert code == 1001
            assert_contiguous(seen, 0)
            tail = parsed(seen)[-2:]
            assert [f["event"] for f in tail] == ["WorkflowCancelled", "WorkflowCompleted"]
            assert tail[0]["reason"] == SHUTDOWN_REASON
            status, stored = stored_events(db, run_id)
            assert status == "CANCELLED"
            assert stored == seen

            second = ServeProcess(db, tmp_path / "second.log")
            await second.wait_ready()
            header, replay = await replay_raw(second.ws_url, run_id)
    finally:
        await first.kill()
        if second is not None:
            await second.kill()
    assert header["status"] == "CANCELLED"
    assert replay == seen


async def test_a_connection_may_wait_longer_than_hypercorns_default_before_its_request(
    server: RunningServer,
) -> None:
    """Under a burst of catch-ups a new connection's request can go unread for seconds; the
    server waits `KEEP_ALIVE_TIMEOUT` (30 s) for it, not Hypercorn's default 5 s."""
    with trio.fail_after(20):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            await trio.sleep(6)
            await stream.send_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            response = b""
            while b"healthy" not in response:
                chunk = await stream.receive_some(65536)
                assert chunk, f"closed after {response!r}"
                response += chunk
    assert response.startswith(b"HTTP/1.1 200"), response[:200]


# -- one server per store, and the start-up order ------------------------------------------------


async def run_runcast_serve(*args: str) -> subprocess.CompletedProcess[bytes]:
    """`runcast serve ARGS` to its end (it should refuse to start), its output captured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNCAST_")}
    with trio.fail_after(30):
        return await trio.run_process(
            [str(runcast_executable()), "serve", *args], capture_stdout=True, capture_stderr=True,
            check=False, env=env,
        )


async def test_a_second_server_on_the_same_file_exits_at_once_naming_it_and_the_first_goes_on(
    start_server: StartServer, db_path: Path
) -> None:
    """The second `runcast serve` on a file a server holds exits 1 with one line naming the file
    and the holder's pid, before it touches the file: the first server's live run goes on and
    completes with every index once (before the lock, the second one closed it as
    interrupted and the first then crashed it on a duplicate index)."""
    server = await start_server(demo_step_delay=0.05)
    async with ws_client(server.ws_url) as client:
        run_id, started = await start_run(client)
        frames = [started]
        await read_until_index(client, 3, frames)
        refused = await run_runcast_serve("--port", str(free_port()), "--store", f"sqlite:{db_path}")
        frames += await recv_raw_until_terminal(client)
    lines = refused.stderr.decode().strip().splitlines()
    assert refused.returncode == 1
    assert len(lines) == 1, lines
    assert str(db_path) in lines[0] and f"pid {os.getpid()}" in lines[0]
    assert_contiguous(frames, 0)
    assert json.loads(frames[-1])["event"] == "WorkflowCompleted"
    assert len(frames) == DEMO_EVENTS
    assert stored_events(db_path, run_id) == ("COMPLETED", frames)


async def test_a_busy_port_is_one_line_and_leaves_the_store_untouched(tmp_path: Path) -> None:
    """The port is bound before the runs a previous process left running are closed: a server
    that cannot listen exits 1 with one line naming host and port, and the file still holds
    the run as it was."""
    db = tmp_path / "left.db"
    async with open_sqlite_store(db) as store:
        info = RunInfo("left-running", DEMO, "Demo", "s", None, "")
        await store.commit(
            [CreateRun(RunRecord(info, RunStatus.RUNNING, 1.0)), AppendEvents(info.run_id, 0, ["{}"])]
        )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        refused = await run_runcast_serve("--port", str(port), "--store", f"sqlite:{db}")
    lines = refused.stderr.decode().strip().splitlines()
    assert refused.returncode == 1
    assert lines == [f"runcast: cannot listen on 127.0.0.1:{port}: Address already in use"]
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("SELECT status, event_count FROM runs").fetchall() == [("RUNNING", 1)]
    finally:
        connection.close()


# -- one node on the Redis store -----------------------------------------------------------------


async def test_a_server_on_redis_runs_reconnects_and_replays_a_run_after_a_restart(
    start_server: StartServer, redis_url: str
) -> None:
    """`--store redis://...` end to end on a real redis-server: a run read live, a reconnect
    mid-run with catch-up, and after the server stopped, a new one replays it byte for byte."""
    first = await start_server(store=redis_url, demo_step_delay=0.05)
    async with ws_client(first.ws_url) as client:
        run_id, started = await start_run(client)
        live = [started]
        await read_until_index(client, 5, live)
    async with ws_client(first.ws_url) as client:
        await client.send({"action": "reconnect", "run_id": run_id, "last_event_index": 5})
        rest = await recv_raw_until_terminal(client)
    assert json.loads(rest[0])["event"] in ("catch_up", "subscribed")
    events = live[:6] + [frame for frame in rest if "event_index" in json.loads(frame)]
    assert_contiguous(events, 0)
    assert len(events) == DEMO_EVENTS
    await first.stop()
    second = await start_server(store=redis_url)
    header, replay = await replay_raw(second.ws_url, run_id)
    assert (header["event"], header["status"], header["total_events"]) == (
        "replay", "COMPLETED", DEMO_EVENTS
    )
    assert replay == events


async def test_a_history_past_its_retention_is_refused_by_name(
    start_server: StartServer, redis_url: str
) -> None:
    """`--retention`: a finished run replays until its history expires; then a reconnect gets
    an error frame saying the history is gone, never an empty replay."""
    server = await start_server(store=redis_url, retention=0.5, demo_step_delay=0.0)
    async with ws_client(server.ws_url) as client:
        run_id, _ = await start_run(client)
        await recv_raw_until_terminal(client)
    _, replay = await replay_raw(server.ws_url, run_id)
    assert len(replay) == DEMO_EVENTS
    await trio.sleep(0.7)
    async with ws_client(server.ws_url) as client:
        await client.send({"action": "reconnect", "run_id": run_id, "last_event_index": -1})
        frames = [await client.recv() for _ in range(2)]
    assert frames[0]["event"] == "replay"
    assert frames[1]["event"] == "error" and "is gone" in frames[1]["error"], frames
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        listed = (await http.get(f"/runs/{run_id}")).json()
    assert listed["status"] == "COMPLETED"  # the record stays; only the events are gone
