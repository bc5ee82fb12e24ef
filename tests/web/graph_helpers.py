"""Graph test helpers shared by the real-server graph tests: the code-review tools plus gated,
counting and failing tools, graph definitions, code samples, and HTTP helpers.

Runs that must still be running while a test acts pass through a `wait` node: an async tool that
sets the `Gates.reached` event of its gate, then waits for the test to open it; so "running, in
node X" is a fact, not a timing. The `gates` and `gserver` fixtures are in tests/conftest.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import trio

from actors.workflows.examples.code_review import CODE_REVIEW_TOOLS
from actors.workflows.tools import ToolRegistry

GUARD = 10  # seconds: a bound so that a hang fails; no run here needs more than a fraction of it
CODE_REVIEW_NODES = ["extract", "analyze", "detect", "suggest", "check_quality"]
CODE_REVIEW_FUNCTIONS = [tool.__name__ for tool in CODE_REVIEW_TOOLS]

# Eight lines over 100 characters and no function: nothing the suggest step can fix, so every
# pass scores 10 - 8 x 0.5 = 6.0, below a threshold of 7.
UNFIXABLE_CODE = "".join(f'CONSTANT_{i} = "{"x" * 100}"\n' for i in range(8))
# Eight functions without docstrings: the first pass scores 6.0; suggest adds the docstrings, so
# the second scores 10.0.
FIXABLE_CODE = "".join(f"def step_{i}(value):\n    return value + {i}\n\n\n" for i in range(8))


# --- tools, gates and graphs ---------------------------------------------------------------------


class Gates:
    """Named gates for `wait` nodes (`params: {"gate": name}`): `reached(name)` is set when such a
    node starts, which then waits until `open(name)`."""

    def __init__(self) -> None:
        self._reached: dict[str, trio.Event] = {}
        self._released: dict[str, trio.Event] = {}

    def reached(self, name: str) -> trio.Event:
        return self._reached.setdefault(name, trio.Event())

    def released(self, name: str) -> trio.Event:
        return self._released.setdefault(name, trio.Event())

    async def wait_reached(self, name: str) -> None:
        with trio.fail_after(GUARD):
            await self.reached(name).wait()

    def open(self, name: str) -> None:
        self.released(name).set()


def make_tools(gates: Gates) -> ToolRegistry:
    """The code-review tools, plus `inc`, `wait` (gated) and `boom` (raises)."""
    tools = ToolRegistry()
    for tool in CODE_REVIEW_TOOLS:
        tools.add(tool)

    @tools.tool
    def inc(state: dict[str, Any]) -> dict[str, Any]:
        """Add one to `count`."""
        return {"count": state.get("count", 0) + 1}

    @tools.tool
    async def wait(state: dict[str, Any], gate: str) -> dict[str, Any]:
        """Wait until the test opens `gate`; record it in `waited`."""
        gates.reached(gate).set()
        await gates.released(gate).wait()
        return {"waited": [*state.get("waited", []), gate]}

    @tools.tool
    def boom(state: dict[str, Any]) -> None:
        """Always fail."""
        raise RuntimeError("tool exploded")

    return tools


def wait_node(gate: str) -> dict[str, Any]:
    return {"function": "wait", "params": {"gate": gate}}


GATED_GRAPH = {
    "name": "gated",
    "nodes": {"first": {"function": "inc"}, "hold": wait_node("hold"), "last": {"function": "inc"}},
    "edges": {"first": "hold", "hold": "last"},
}
FAILING_GRAPH = {
    "name": "failing",
    "nodes": {"first": {"function": "inc"}, "explode": {"function": "boom"}, "never": {"function": "inc"}},
    "edges": {"first": "explode", "explode": "never"},
}
TWO_NODES = {
    "name": "two-nodes",
    "nodes": {"a": {"function": "inc"}, "b": {"function": "inc"}},
    "edges": {"a": "b"},
}


async def create_graph(http: httpx.AsyncClient, definition: dict[str, Any]) -> str:
    answer = await http.post("/graph/create", json=definition)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["message"] == "Graph created successfully"
    return str(body["graph_id"])


async def run_graph(
    http: httpx.AsyncClient, graph_id: str, initial_state: dict[str, Any]
) -> dict[str, Any]:
    """POST /graph/run: the answer once the run has ended."""
    with trio.fail_after(GUARD):
        answer = await http.post("/graph/run", json={"graph_id": graph_id, "initial_state": initial_state})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def start_background(
    http: httpx.AsyncClient, graph_id: str, initial_state: dict[str, Any]
) -> str:
    answer = await http.post(
        "/graph/run/background", json={"graph_id": graph_id, "initial_state": initial_state}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    run_id = str(body["run_id"])
    assert body == {
        "run_id": run_id,
        "message": "Workflow started in background",
        "status_endpoint": f"/graph/state/{run_id}",
    }
    return run_id


async def poll_until_finished(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    """Poll GET /graph/background/{run_id}/status, as the guide's clients do, until the run is no
    longer running: its last status answer."""
    with trio.fail_after(GUARD):
        while True:
            answer = await http.get(f"/graph/background/{run_id}/status")
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            if body["task_status"] != "running":
                return body
            await trio.sleep(0.01)


async def wait_published(http: httpx.AsyncClient, run_id: str, count: int) -> None:
    """Until GET /runs/{run_id} counts `count` events. A node's events are published once
    durable, as soon as the run's body lets its writer run: a gated tool may already be waiting
    while its `StepStarted` is still being committed."""
    with trio.fail_after(GUARD):
        while (await http.get(f"/runs/{run_id}")).json()["event_count"] < count:
            await trio.sleep(0.005)


async def graph_state(http: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    answer = await http.get(f"/graph/state/{run_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def assert_log_entry(entry: dict[str, Any], node: str, function: str, status: str = "completed") -> None:
    """An execution log entry of the spec's shape, with a timezone-aware ISO 8601 timestamp."""
    assert set(entry) == {"node", "status", "timestamp", "details"}
    assert (entry["node"], entry["status"]) == (node, status)
    assert datetime.fromisoformat(entry["timestamp"]).utcoffset() == timedelta(0)
    assert entry["details"]["function"] == function
    duration = entry["details"]["duration_ms"]
    assert isinstance(duration, int | float) and duration >= 0
