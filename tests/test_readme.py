"""The README's Python examples run as written: the runtime API prints a gap-free run, the first
client follows a run across a reconnect, and the server of one's own serves its workflow and
tool. (Its graph streaming example is run by tests/test_graph_guide.py.)"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import trio

from tests.conftest import StartServer
from tests.processes import stop_cleanly, wait_for_health
from web.demo import Demo

README = Path(__file__).resolve().parent.parent / "README.md"


def python_example(marker: str, what: str) -> str:
    """The README's one ```python block that contains `marker`."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    examples = [block for block in blocks if marker in block]
    assert len(examples) == 1, f"the README should have one python example of {what}"
    return examples[0]


def test_python_api_example_runs_as_written(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(python_example("open_runtime", "the runtime API"))
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    indices = [int(line.split()[0]) for line in lines]
    assert indices == list(range(len(lines)))
    assert lines[0].split()[1] == "WorkflowStarted"
    assert lines[-1].split()[1] == "WorkflowCompleted"
    assert any("halfway" in line for line in lines)
    assert any(line.endswith("A short title") for line in lines)


async def test_first_client_example_follows_a_run_across_its_reconnect(
    start_server: StartServer, tmp_path: Path
) -> None:
    """Against the demo as `make serve` serves it (its step delay), given the server's URL."""
    server = await start_server(demo_step_delay=Demo().step_delay)
    script = tmp_path / "follow.py"
    script.write_text(python_example('"start-workflow"', "a workflow protocol client"))
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, str(script), server.ws_url],
            cwd=tmp_path, capture_stdout=True, capture_stderr=True, check=False,
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    lines = done.stdout.decode().splitlines()
    demo = Demo()
    events = 2 + demo.steps * (3 + demo.progress)  # the demo's events per run
    indices = [int(line.split()[0]) for line in lines if not line.startswith("- ")]
    assert indices == list(range(events)), lines  # each index once, in order, none missing
    controls = [line for line in lines if line.startswith("- ")]
    assert controls == ["- catch_up", "- subscribed"], lines  # the reconnect missed some events
    assert lines.index("- catch_up") == 5, lines  # right after the five read before the drop
    assert lines[-1] == f"{events - 1} WorkflowCompleted", lines


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_own_server_example_serves_its_workflow_and_tool(tmp_path: Path) -> None:
    """Run as written but for its port (8000 there, a free one here), until SIGTERM."""
    example = python_example("from web.server import", "serving workflows of one's own")
    assert example.count("port=8000") == 1
    port = free_port()
    script = tmp_path / "own_server.py"
    script.write_text(example.replace("port=8000", f"port={port}"))
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_health(f"{base}/health", server)
        with urllib.request.urlopen(f"{base}/workflows", timeout=10) as response:
            workflows = json.load(response)
        with urllib.request.urlopen(f"{base}/graph/tools", timeout=10) as response:
            tools = json.load(response)["tools"]
    finally:
        stop_cleanly(server, "the example server")
    assert [w["id"] for w in workflows] == ["shout"]
    assert tools == [
        {"name": "word_count", "description": "Count the words of `text`.", "params": ["minimum"]}
    ]
    assert (tmp_path / "shout.db").is_file()
