"""The three client scripts of ../shared/seeds, unmodified, against `runcast serve` as `make serve`
runs it (port 7777, demo step delay 1.25 s); only the SQLite file is the test's own. Every line
they print must be an OK line. The same scripts against three nodes on one Redis: port 7777 then
relays each script's connections to the nodes in turn, so that its reconnect goes to another node
than the one that started its run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from tests.conftest import StartCluster
from tests.processes import port_is_free, stop_cleanly, wait_for_health
from tests.web.test_cluster import stop_node_cleanly

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO.parent / "shared" / "seeds"
SCRIPTS = ("websocket_reconnect.py", "disruption_catchup.py", "events_replay.py")
PORT = 7777
BAD_MARKERS = (
    "[ERROR]", "Gaps", "should be 0", "Did not receive", "Error in", "Test failed",
    "Traceback", "No run_id", "Connection refused", "No catch-up events", "No events received",
)


@pytest.fixture
def runcast_on_7777(tmp_path: Path) -> Iterator[None]:
    assert SEEDS.is_dir(), f"the seed scripts are expected in {SEEDS}"
    assert port_is_free(PORT), f"port {PORT} is taken: stop whatever serves it (make serve?)"
    runcast = Path(sys.executable).parent / "runcast"
    server = subprocess.Popen(
        [str(runcast), "serve", "--store", f"sqlite:{tmp_path / 'seeds.db'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{PORT}/health", server)
        yield
    finally:
        stop_cleanly(server, "runcast serve")


def test_seed_scripts_print_only_ok_lines(runcast_on_7777: None) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    scripts = {
        name: subprocess.Popen(
            [sys.executable, str(SEEDS / name)],
            cwd=SEEDS,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for name in SCRIPTS
    }
    outputs = {}
    for name, process in scripts.items():
        out, _ = process.communicate(timeout=90)
        outputs[name] = out.decode()
        assert process.returncode == 0, f"{name} exited {process.returncode}:\n{outputs[name]}"
    for name, out in outputs.items():
        bad = [line for line in out.splitlines() if any(m in line for m in BAD_MARKERS)]
        assert not bad, f"{name} printed:\n" + "\n".join(bad) + f"\n--- full output ---\n{out}"
    assert "No gaps in event_index (all events received)" in outputs["websocket_reconnect.py"]
    assert "Catch-up started from event 0 (got FULL history)" in outputs["disruption_catchup.py"]
    assert "Workflow continued streaming after catch-up" in outputs["disruption_catchup.py"]
    assert "[OK] Received all 42 events (last_event_index was ignored)" in outputs["events_replay.py"]


# --- the seeds against three nodes on one Redis --------------------------------------------------

SEED_SESSIONS = {  # the session id each script starts its run with
    "websocket_reconnect.py": "test-session-123",
    "disruption_catchup.py": "full-catchup-test",
    "events_replay.py": "replay-test-session",
}


def owning_pid(port: int, pids: Iterable[int]) -> int | None:
    """Which of `pids` holds the loopback TCP socket of local port `port` connected to PORT."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as text:
                lines = text.readlines()[1:]
        except FileNotFoundError:  # no IPv6
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == port and int(remote.rsplit(":", 1)[1], 16) == PORT:
                inodes.add(f"socket:[{inode}]")
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return pid
            except OSError:
                continue
    return None


async def relay(client: trio.SocketStream, upstream: trio.SocketStream) -> None:
    """Bytes both ways until each side has ended its half (or either fails)."""

    async def pump(source: trio.SocketStream, sink: trio.SocketStream, scope: trio.CancelScope) -> None:
        try:
            while data := await source.receive_some(65536):
                await sink.send_all(data)
            await sink.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            scope.cancel()

    async with client, upstream, trio.open_nursery() as nursery:
        nursery.start_soon(pump, client, upstream, nursery.cancel_scope)
        nursery.start_soon(pump, upstream, client, nursery.cancel_scope)


async def test_seed_scripts_print_only_ok_lines_against_three_nodes_on_one_redis(
    redis_url: str, start_cluster: StartCluster
) -> None:
    """Port 7777 relays each seed script's connections to the nodes of a cluster (default demo
    step delay, as `make serve`): the first connection of script i (start the run) to node i,
    its second (reconnect, or replay) to node i+1. So each node starts one script's run and
    serves another script's reconnect to a run it does not hold, all in one pass of the
    scripts."""
    assert SEEDS.is_dir(), f"the seed scripts are expected in {SEEDS}"
    assert port_is_free(PORT), f"port {PORT} is taken: stop whatever serves it (make serve?)"
    cluster = start_cluster(redis_url, 3)
    nodes = cluster.nodes
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    scripts: dict[int, int] = {}  # pid: index in SCRIPTS
    routes: dict[tuple[str, int], str] = {}  # (script, its connection number): node id
    strangers: list[int] = []
    outputs: dict[str, str] = {}

    async def route(client: trio.SocketStream) -> None:
        pid = owning_pid(client.socket.getpeername()[1], scripts)
        if pid is None:
            strangers.append(client.socket.getpeername()[1])
            await client.aclose()
            return
        index = scripts[pid]
        connection = sum(1 for name, _ in routes if name == SCRIPTS[index])
        node = nodes[(index + connection) % len(nodes)]
        routes[SCRIPTS[index], connection] = node.node_id
        await relay(client, await trio.open_tcp_stream("127.0.0.1", node.port))

    async def run_script(name: str, process: trio.Process) -> None:
        assert process.stdout is not None
        chunks = []
        while chunk := await process.stdout.receive_some():
            chunks.append(chunk)
        outputs[name] = b"".join(chunks).decode()
        assert await process.wait() == 0, f"{name} exited {process.returncode}:\n{outputs[name]}"

    started = time.monotonic()
    with trio.fail_after(90):
        async with trio.open_nursery() as relays:
            await relays.start(partial(trio.serve_tcp, route, PORT, host="127.0.0.1"))
            async with trio.open_nursery() as nursery:
                for index, name in enumerate(SCRIPTS):
                    process = await trio.lowlevel.open_process(
                        [sys.executable, str(SEEDS / name)], cwd=SEEDS, env=env,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    )
                    scripts[process.pid] = index
                    nursery.start_soon(run_script, name, process)
            relays.cancel_scope.cancel()
    print(f"the seeds took {time.monotonic() - started:.1f} s against the cluster")

    for name, out in outputs.items():
        bad = [line for line in out.splitlines() if any(m in line for m in BAD_MARKERS)]
        assert not bad, f"{name} printed:\n" + "\n".join(bad) + f"\n--- full output ---\n{out}"
    assert "No gaps in event_index (all events received)" in outputs["websocket_reconnect.py"]
    assert "Catch-up started from event 0 (got FULL history)" in outputs["disruption_catchup.py"]
    assert "Workflow continued streaming after catch-up" in outputs["disruption_catchup.py"]
    assert "[OK] Received all 42 events (last_event_index was ignored)" in outputs["events_replay.py"]
    assert not strangers, f"connections to port {PORT} from other processes: {strangers}"
    assert routes == {
        (name, connection): nodes[(index + connection) % len(nodes)].node_id
        for index, name in enumerate(SCRIPTS) for connection in (0, 1)
    }
    # each script's run is held by the node its first connection went to, as every node says
    async with httpx.AsyncClient(timeout=10) as http:
        for node in nodes:
            listed = (await http.get(f"{node.url}/runs")).json()["runs"]
            assert {r["session_id"]: r["node"] for r in listed} == {
                SEED_SESSIONS[name]: routes[name, 0] for name in SCRIPTS
            }, node.node_id
    for node in nodes:
        stop_node_cleanly(cluster, node)
