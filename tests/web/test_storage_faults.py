"""web/server.py on a disk that fills up: a real `runcast serve` whose files may not grow past a
limit (RLIMIT_FSIZE, as `ulimit -f` sets it), real WebSocket and HTTP clients.

While writes fail every client learns what happened (a terminal event or an error naming the
storage problem, never silence), the listener and `/health` keep answering, and new runs are
refused with a clear error. Once the files may grow again the same process works again, the runs
it lost are closed, and a restart on the file keeps every event a client saw (guarantee 8).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.clients import ws_client
from tests.sqlite_files import stored_events
from tests.web.test_server import DEMO, free_port, runcast_executable

FILE_LIMIT = 300 * 1024  # bytes any file of the server may reach while the disk is "full"
CLIENTS = 25
ENDINGS = {"WorkflowCompleted", "WorkflowError", "error"}


def limit_file_size() -> None:
    """In the server's process before it runs: files stop growing at FILE_LIMIT (the write
    fails with EFBIG instead of the process being killed by SIGXFSZ)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, resource.RLIM_INFINITY))


class LimitedServer:
    def __init__(self, db: Path, log: Path, *, limited: bool) -> None:
        self.port = free_port()
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [str(runcast_executable()), "serve", "--port", str(self.port),
             "--store", f"sqlite:{db}", "--demo-step-delay", "0.01"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=limit_file_size if limited else None,
            env={k: v for k, v in os.environ.items() if not k.startswith("RUNCAST_")},
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/workflows/ws"

    def lift_limit(self) -> None:
        resource.prlimit(
            self.process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        )

    async def health(self) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as http:
            return await http.get("/health")

    async def wait_healthy(self) -> dict[str, Any]:
        while True:
            try:
                answer = await self.health()
            except httpx.TransportError:
                await trio.sleep(0.05)
                continue
            if answer.status_code == 200:
                body: dict[str, Any] = answer.json()
                return body
            await trio.sleep(0.1)

    async def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = await trio.to_thread.run_sync(self.process.wait)
        self._log.close()
        return code


async def start_and_read(url: str, into: dict[str, list[dict[str, Any]]], key: str) -> None:
    """Start a demo run and read until it ends or the server says why not (20 s at most)."""
    frames: list[dict[str, Any]] = []
    into[key] = frames
    async with ws_client(url) as client:
        await client.send({"action": "start-workflow", "workflow_id": DEMO})
        with trio.move_on_after(20):
            while not frames or frames[-1].get("event") not in ENDINGS:
                frames.append(await client.recv(timeout=20))


async def test_a_full_disk_costs_the_runs_it_touches_every_client_hears_and_the_server_recovers(
    tmp_path: Path,
) -> None:
    db = tmp_path / "full.db"
    server = LimitedServer(db, tmp_path / "server.log", limited=True)
    restarted: LimitedServer | None = None
    try:
        with trio.fail_after(120):
            await server.wait_healthy()
            seen: dict[str, list[dict[str, Any]]] = {}
            async with trio.open_nursery() as nursery:
                for i in range(CLIENTS):
                    nursery.start_soon(start_and_read, server.ws_url, seen, f"c{i}")
            # Every client heard how its run ended, or why it did not; nobody waits in silence.
            lost_runs = set()
            for frames in seen.values():
                assert frames and frames[-1].get("event") in ENDINGS, frames[-3:]
                last = frames[-1]
                if last["event"] == "error":
                    assert "disk I/O error" in last["error"] or "disk is full" in last["error"], last
                    if "run_id" in last:
                        lost_runs.add(last["run_id"])
            assert lost_runs, "the limit was never reached"

            # While writes fail: /health answers 503 naming the store's error, and the listener
            # still takes connections. A start is refused (or, when the small write a start then
            # tries lands, its run is lost at its first commit), with a message that says so.
            health = await server.health()
            assert health.status_code == 503, health.text
            assert health.json()["status"] == "failing"
            refused: dict[str, list[dict[str, Any]]] = {}
            await start_and_read(server.ws_url, refused, "late")
            assert refused["late"][-1]["event"] == "error"
            assert "the store cannot" in refused["late"][-1]["error"]
            assert "disk I/O error" in refused["late"][-1]["error"]

            # Room again: the same process serves a new run to its end, and closes the lost ones.
            server.lift_limit()
            after: dict[str, list[dict[str, Any]]] = {}
            await start_and_read(server.ws_url, after, "after")
            assert after["after"][-1]["event"] == "WorkflowCompleted"
            while (await server.wait_healthy())["live_runs"]:
                await trio.sleep(0.1)
            async with ws_client(server.ws_url) as client:
                run_id = sorted(lost_runs)[0]
                await client.send({"action": "reconnect", "run_id": run_id, "last_event_index": -1})
                replay = await client.recv()
                assert (replay["event"], replay["status"]) == ("replay", "ERROR")
            assert await server.stop() == 0

            # A restart on the file keeps every event any client saw, each lost run ending in a
            # WorkflowError that says the storage failed.
            restarted = LimitedServer(db, tmp_path / "restarted.log", limited=False)
            await restarted.wait_healthy()
            for frames in [*seen.values(), after["after"]]:
                events = [f for f in frames if "event_index" in f]
                if not events:
                    continue
                status, frames = stored_events(db, events[0]["run_id"])
                history = [json.loads(frame) for frame in frames]
                assert history[: len(events)] == events
                if events[0]["run_id"] in lost_runs:
                    assert status == "ERROR"
                    assert history[-1]["event"] == "WorkflowError"
                    assert history[-1]["reason"] == "storage"
    finally:
        await server.stop()
        if restarted is not None:
            await restarted.stop()
