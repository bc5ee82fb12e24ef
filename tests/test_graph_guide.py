"""The graph guide (../shared/seeds/graph_engine_websocket_guide.md) against `runcast serve --port
8000`, the port its code uses: the guide's own Python and JavaScript examples, read from the guide
at test time with only the graph id placeholders replaced by a real graph's, and the two example
scripts of examples/graph. Only the SQLite file is the test's own."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from actors.workflows.examples.code_review import code_review_graph
from tests.processes import port_is_free, wait_for_health

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO.parent / "shared" / "seeds" / "graph_engine_websocket_guide.md"
EXAMPLES = REPO / "examples" / "graph"
PORT = 8000
BASE_URL = f"http://127.0.0.1:{PORT}"
GRAPH_ID_PLACEHOLDERS = ("YOUR_GRAPH_ID", "abc-123")
CLIENT_TIMEOUT = 20.0  # seconds any one client may take
FENCED_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)

# The runnable Python examples of the guide, each known by a line only it has.
PYTHON_EXAMPLES = {
    "websocket_stream": "async with websockets.connect(uri) as websocket:",
    "background_poll": 'print("Final state:", result.json())',
    "parallel_five": "for i in range(5):",
}
# The JavaScript example of the guide, known by its message handler.
JS_EXAMPLES = {"websocket_stream": "ws.onmessage = (event) => {"}


def _is_python_fragment(block: str) -> bool:
    # "Combining WebSocket + Background Tasks" passes a literal `...` where the request body goes
    # (`requests.post(url, ...)`) and has no imports: a fragment to read, not a program to run.
    return '/graph/run/background", ...)' in block


def _is_js_fragment(block: str) -> bool:
    # "1. Client Connects" is the example's first line alone: it opens the socket and never sends
    # the initial state, so it has no end to wait for.
    return block.strip() == (
        "const ws = new WebSocket('ws://localhost:8000/ws/graph/run/YOUR_GRAPH_ID');"
    )


def guide_examples(
    language: str, known: dict[str, str], is_fragment: Callable[[str], bool]
) -> dict[str, str]:
    """The guide's `language` blocks by example name. Every block must be exactly one of `known`
    or the one fragment, and every known example must be there: a changed guide fails here
    instead of silently running less."""
    blocks = [body for lang, body in FENCED_BLOCK.findall(GUIDE.read_text(encoding="utf-8"))
              if lang == language]
    fragments = [block for block in blocks if is_fragment(block)]
    assert len(fragments) == 1, f"expected one {language} fragment in the guide, found {fragments}"
    examples: dict[str, str] = {}
    for block in blocks:
        if is_fragment(block):
            continue
        names = [name for name, marker in known.items() if marker in block]
        assert len(names) == 1, f"this {language} block of the guide is {names or 'unknown'}:\n{block}"
        assert names[0] not in examples, f"the guide has two {names[0]} blocks"
        examples[names[0]] = block
    assert set(examples) == set(known), f"the guide's {language} examples are {sorted(examples)}"
    return examples


def with_graph_id(block: str, graph_id: str) -> str:
    assert any(placeholder in block for placeholder in GRAPH_ID_PLACEHOLDERS), block
    for placeholder in GRAPH_ID_PLACEHOLDERS:
        block = block.replace(placeholder, graph_id)
    return block


@attrs.frozen
class Printed:
    lines: list[str]
    stderr: str


def run_client(argv: list[str], cwd: Path) -> Printed:
    """What `argv` printed; it must exit 0 within CLIENT_TIMEOUT."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        done = subprocess.run(
            argv, check=False, cwd=cwd, env=env, capture_output=True, text=True,
            timeout=CLIENT_TIMEOUT,
        )
    except subprocess.TimeoutExpired as late:
        raise AssertionError(
            f"{argv} did not end within {CLIENT_TIMEOUT} s; it printed:\n{late.stdout}\n{late.stderr}"
        ) from None
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return Printed(done.stdout.splitlines(), done.stderr)


def create_graph() -> str:
    request = urllib.request.Request(
        f"{BASE_URL}/graph/create",
        data=json.dumps(code_review_graph()).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        created = json.load(response)
    graph_id: str = created["graph_id"]
    return graph_id


@pytest.fixture(scope="module")
def graph_id(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `runcast serve --port 8000` on its own SQLite file, with the example graph created."""
    assert GUIDE.is_file(), f"the guide is expected at {GUIDE}"
    assert port_is_free(PORT), f"port {PORT} is taken: the guide's examples need it, stop its server"
    home = tmp_path_factory.mktemp("graph_guide")
    runcast = Path(sys.executable).parent / "runcast"
    with open(home / "server.log", "wb") as log:
        server = subprocess.Popen(
            [str(runcast), "serve", "--port", str(PORT), "--store", f"sqlite:{home / 'guide.db'}"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            wait_for_health(f"{BASE_URL}/health", server)
            yield create_graph()
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                raise AssertionError("runcast serve did not stop within 20 s of SIGTERM") from None
    logged = (home / "server.log").read_text(errors="replace")
    assert server.returncode == 0, f"runcast serve exited {server.returncode}:\n{logged}"
    assert "Traceback" not in logged, logged


def test_the_guide_has_exactly_the_known_examples() -> None:
    python = guide_examples("python", PYTHON_EXAMPLES, _is_python_fragment)
    javascript = guide_examples("javascript", JS_EXAMPLES, _is_js_fragment)
    assert sorted(python) == ["background_poll", "parallel_five", "websocket_stream"]
    assert list(javascript) == ["websocket_stream"]


def test_guide_python_websocket_example(graph_id: str, tmp_path: Path) -> None:
    script = tmp_path / "guide_websocket_stream.py"
    block = guide_examples("python", PYTHON_EXAMPLES, _is_python_fragment)["websocket_stream"]
    script.write_text(with_graph_id(block, graph_id))
    lines = run_client([sys.executable, str(script)], tmp_path).lines
    assert lines[0] == "Event: connected", lines
    assert lines[-2:] == ["Event: complete", "Workflow completed!"], lines
    # "def test(): pass" scores 9.5 >= 7: one pass over the five nodes
    assert lines.count("Event: node_start") == lines.count("Event: node_complete") == 5, lines
    assert "Event: error" not in lines, lines


def test_guide_python_background_example(graph_id: str, tmp_path: Path) -> None:
    script = tmp_path / "guide_background_poll.py"
    block = guide_examples("python", PYTHON_EXAMPLES, _is_python_fragment)["background_poll"]
    script.write_text(with_graph_id(block, graph_id))
    lines = run_client([sys.executable, str(script)], tmp_path).lines
    started = re.fullmatch(r"Task started: (\S+)", lines[0])
    assert started, lines
    statuses = [line.removeprefix("Status: ") for line in lines if line.startswith("Status: ")]
    assert statuses[-1:] == ["completed"] and set(statuses[:-1]) <= {"running"}, lines
    assert lines[-1].startswith("Final state: "), lines
    final = ast.literal_eval(lines[-1].removeprefix("Final state: "))
    assert final["run_id"] == started.group(1)
    assert (final["status"], final["current_node"]) == ("completed", "END"), final
    assert final["state"]["function_count"] == 1, final


def test_guide_python_parallel_example(graph_id: str, tmp_path: Path) -> None:
    script = tmp_path / "guide_parallel_five.py"
    block = guide_examples("python", PYTHON_EXAMPLES, _is_python_fragment)["parallel_five"]
    script.write_text(with_graph_id(block, graph_id))
    lines = run_client([sys.executable, str(script)], tmp_path).lines
    completed = [re.fullmatch(r"Task (\S+) completed!", line) for line in lines]
    assert all(completed) and len(lines) == 5, lines
    assert len({match.group(1) for match in completed if match}) == 5, lines


def node_command() -> list[str]:
    """`node`, with the flag that gives Node 20 and 21 their global WebSocket."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the guide's JavaScript example needs Node 20.10 or later")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    major, minor = (int(part) for part in version.removeprefix("v").split(".")[:2])
    if (major, minor) < (20, 10):
        pytest.skip(f"node {version} has no WebSocket; the guide's example needs 20.10 or later")
    return [node, "--experimental-websocket"] if major < 22 else [node]


def test_guide_javascript_example(graph_id: str, tmp_path: Path) -> None:
    command = node_command()
    script = tmp_path / "guide_websocket_stream.js"
    block = guide_examples("javascript", JS_EXAMPLES, _is_js_fragment)["websocket_stream"]
    script.write_text(with_graph_id(block, graph_id))
    printed = run_client([*command, str(script)], tmp_path)
    lines = printed.lines
    assert lines[:2] == ["Connected to workflow engine", "Node extract started"], printed
    assert any(line.startswith("Workflow completed!") for line in lines), printed
    assert "Error:" not in printed.stderr, printed


def test_background_tasks_script(graph_id: str, tmp_path: Path) -> None:
    lines = run_client([sys.executable, str(EXAMPLES / "test_background_tasks.py")], tmp_path).lines
    headings = [line for line in lines if re.fullmatch(r"\d\. .*", line)]
    assert headings == [
        "1. Creating workflow graph...",
        "2. Starting workflow in background...",
        "3. Polling for task status...",
        "4. Fetching final results...",
    ], lines
    polls = [line for line in lines if line.startswith("[Poll ")]
    for number, poll in enumerate(polls, start=1):
        assert re.fullmatch(
            rf"\[Poll {number}\] Task: \w+ \| Workflow: \w+ \| Node: \w+", poll
        ), polls
    assert polls[-1].endswith("Task: completed | Workflow: completed | Node: END"), polls
    assert lines[-2:] == ["  Functions Found: 3", "  Quality Score: 8.5/10"], lines


def test_websocket_script(graph_id: str, tmp_path: Path) -> None:
    lines = run_client([sys.executable, str(EXAMPLES / "test_websocket.py")], tmp_path).lines
    # the guide's expected output, without its emoji, for the example's three functions
    assert lines[:6] == [
        "[1] WebSocket connection established",
        "[2] Workflow started",
        "[3] Node 'extract' started (iteration 1)",
        "[4] Node 'extract' completed",
        "       -> Functions found: 3",
        "[5] Transition: extract -> analyze",
    ], lines
    assert re.fullmatch(r"\[\d+\] Workflow completed!", lines[-3]), lines
    assert lines[-2:] == ["       -> Functions Found: 3", "       -> Quality Score: 8.5/10"], lines


@pytest.mark.parametrize("script", ["test_background_tasks.py", "test_websocket.py"])
def test_scripts_fail_without_a_server(script: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "http://127.0.0.1:1"],
        check=False, cwd=tmp_path, capture_output=True, text=True, timeout=CLIENT_TIMEOUT,
    )
    assert done.returncode == 1, done
    assert done.stderr.startswith("error: cannot reach http://127.0.0.1:1/graph/create"), done


def test_readme_websocket_example(graph_id: str, tmp_path: Path) -> None:
    """The README's graph streaming example, as written, with the graph id as its argument."""
    readme = (REPO / "README.md").read_text()
    blocks = [b for lang, b in FENCED_BLOCK.findall(readme) if lang == "python"]
    examples = [b for b in blocks if "/ws/graph/run/" in b]
    assert len(examples) == 1, "the README should have one graph streaming example"
    script = tmp_path / "readme_stream.py"
    script.write_text(examples[0])
    lines = run_client([sys.executable, str(script), graph_id], tmp_path).lines
    assert lines[0].split() == ["connected"], lines
    assert lines[1].split() == ["status"], lines
    assert [line.split()[1] for line in lines if line.startswith("node_start")] == [
        "extract", "analyze", "detect", "suggest", "check_quality"
    ], lines
    assert lines[-1].split() == ["complete"], lines
