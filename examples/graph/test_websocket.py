"""The guide's WebSocket walkthrough against a running `runcast serve --port 8000`.

Creates the code-review example graph, runs it over `ws://.../ws/graph/run/{graph_id}` on the
example input (`SAMPLE_CODE`, threshold 7, max_iterations 3) and prints every frame as a numbered
line, as the guide shows. Exits non-zero, with the reason, on an `error` or `node_error` frame, or
when the socket ends (or the time budget runs out) before the `complete` frame.

    python examples/graph/test_websocket.py [BASE_URL]   # default http://localhost:8000
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import requests
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from actors.workflows.examples.code_review import SAMPLE_CODE, code_review_graph

DEFAULT_BASE_URL = "http://localhost:8000"
TIME_BUDGET = 30.0  # seconds for the whole run
INDENT = " " * 7
# state_update keys worth a detail line under "Node ... completed", with how to say them
DETAILS = {
    "function_count": "Functions found: {}",
    "avg_complexity": "Average complexity: {:.2f}",
    "issue_count": "Issues found: {}",
    "suggestions": "Suggestions: {}",
    "quality_score": "Quality score: {}/10",
}


class StreamFailed(Exception):
    """The run's stream ended without a `complete` frame; the message says how."""


def create_graph(base_url: str) -> str:
    url = f"{base_url}/graph/create"
    try:
        response = requests.post(url, json=code_review_graph(), timeout=10)
    except requests.ConnectionError:
        raise SystemExit(f"error: cannot reach {url}: is runcast serving there?") from None
    if response.status_code != 200:
        raise SystemExit(f"error: POST {url} answered {response.status_code}: {response.text}")
    graph_id: str = response.json()["graph_id"]
    return graph_id


def describe(frame: dict[str, Any]) -> list[str]:
    """The lines printed for one frame: its headline, then any detail lines."""
    kind = frame["type"]
    if kind == "connected":
        return [frame["message"]]
    if kind == "status":
        status = frame["status"]
        return ["Workflow started" if status == "started" else f"Workflow status: {status}"]
    if kind == "node_start":
        return [f"Node '{frame['node']}' started (iteration {frame['iteration']})"]
    if kind == "node_complete":
        lines = [f"Node '{frame['node']}' completed"]
        for key, text in DETAILS.items():
            if key in frame["state_update"]:
                value = frame["state_update"][key]
                shown = len(value) if isinstance(value, list) else value
                lines.append(f"{INDENT}-> " + text.format(shown))
        return lines
    if kind == "transition":
        return [f"Transition: {frame['from']} -> {frame['to']}"]
    if kind == "system":
        return [f"System: {frame['message']}"]
    if kind == "complete":
        state = frame["final_state"]
        return [
            "Workflow completed!",
            f"{INDENT}-> Functions Found: {state['function_count']}",
            f"{INDENT}-> Quality Score: {state['quality_score']}/10",
        ]
    return [f"Event: {kind}"]


async def stream(ws_url: str) -> None:
    """Prints the run's frames until the server closes the socket after `complete`."""
    initial_state = {"code": SAMPLE_CODE, "threshold": 7, "max_iterations": 3}
    completed = False
    async with connect(ws_url) as websocket:
        await websocket.send(json.dumps({"initial_state": initial_state}))
        number = 0
        async for message in websocket:
            frame = json.loads(message)
            number += 1
            headline, *details = describe(frame)
            print(f"[{number}] {headline}")
            for line in details:
                print(line)
            if frame["type"] == "error":
                raise StreamFailed(f"{frame['message']}: {frame['error']}")
            if frame["type"] == "node_error":
                raise StreamFailed(f"node '{frame['node']}' failed: {frame['error']}")
            completed = completed or frame["type"] == "complete"
    if not completed:
        raise StreamFailed(f"{ws_url} closed before the 'complete' frame")


def main(base_url: str) -> None:
    graph_id = create_graph(base_url)
    ws_url = f"ws{base_url.removeprefix('http')}/ws/graph/run/{graph_id}"
    try:
        asyncio.run(asyncio.wait_for(stream(ws_url), TIME_BUDGET))
    except TimeoutError:
        raise SystemExit(f"error: no 'complete' frame from {ws_url} in {TIME_BUDGET} s") from None
    except StreamFailed as failure:
        raise SystemExit(f"error: {failure}") from None
    except (OSError, WebSocketException) as failure:
        raise SystemExit(f"error: {ws_url}: {failure}") from None


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/") if len(sys.argv) > 1 else DEFAULT_BASE_URL)
