"""The three client scripts of ../shared/seeds, unmodified, against `runcast serve` as `make serve`
runs it (port 7777, demo step delay 1.25 s); only the SQLite file is the test's own. Every line
they print must be an OK line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import port_is_free, stop_cleanly, wait_for_health

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
