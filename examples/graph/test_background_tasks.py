"""The guide's background-task walkthrough against a running `runcast serve --port 8000`.

Creates the code-review example graph, starts it in the background on the example input
(`SAMPLE_CODE`, threshold 7, max_iterations 3), polls `/graph/background/{run_id}/status` until
the run ends, then prints the result from `/graph/state/{run_id}`. Exits non-zero, with the reason,
when a request fails, the run fails, or it does not end within the polling budget.

    python examples/graph/test_background_tasks.py [BASE_URL]   # default http://localhost:8000
"""

from __future__ import annotations

import sys
import time
from typing import Any

import requests

from actors.workflows.examples.code_review import SAMPLE_CODE, code_review_graph

DEFAULT_BASE_URL = "http://localhost:8000"
POLL_INTERVAL = 0.2  # seconds between status polls
MAX_POLLS = 150  # 30 s at POLL_INTERVAL
ENDED = ("completed", "failed")


def call(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON answer of one request; SystemExit naming the request when it is not a 200."""
    try:
        response = requests.request(method, url, json=body, timeout=10)
    except requests.ConnectionError:
        raise SystemExit(f"error: cannot reach {url}: is runcast serving there?") from None
    if response.status_code != 200:
        raise SystemExit(f"error: {method} {url} answered {response.status_code}: {response.text}")
    answer: dict[str, Any] = response.json()
    return answer


def poll_until_ended(base_url: str, run_id: str) -> dict[str, Any]:
    """The first status whose `task_status` is completed or failed, printing every poll."""
    for poll in range(1, MAX_POLLS + 1):
        status = call("GET", f"{base_url}/graph/background/{run_id}/status")
        print(
            f"[Poll {poll}] Task: {status['task_status']} | "
            f"Workflow: {status['workflow_status']} | Node: {status['current_node']}"
        )
        if status["task_status"] in ENDED:
            return status
        time.sleep(POLL_INTERVAL)
    raise SystemExit(f"error: run {run_id} did not end within {MAX_POLLS} polls")


def main(base_url: str) -> None:
    print("1. Creating workflow graph...")
    graph_id = call("POST", f"{base_url}/graph/create", code_review_graph())["graph_id"]
    print(f"Graph created: {graph_id}")

    print("\n2. Starting workflow in background...")
    initial_state = {"code": SAMPLE_CODE, "threshold": 7, "max_iterations": 3}
    started = call(
        "POST", f"{base_url}/graph/run/background",
        {"graph_id": graph_id, "initial_state": initial_state},
    )
    run_id = started["run_id"]
    if started["status_endpoint"] != f"/graph/state/{run_id}":
        raise SystemExit(f"error: status_endpoint is {started['status_endpoint']!r}, not the run's")
    print("Background task started!")
    print(f"  Run ID: {run_id}")

    print("\n3. Polling for task status...")
    status = poll_until_ended(base_url, run_id)
    if status["task_status"] == "failed":
        raise SystemExit(f"error: run {run_id} failed: {status.get('error')}")
    print("\nWorkflow completed!")

    print("\n4. Fetching final results...")
    result = call("GET", f"{base_url}/graph/state/{run_id}")
    if result["status"] != "completed" or result["current_node"] != "END":
        raise SystemExit(
            f"error: /graph/state/{run_id} says status {result['status']!r} at node "
            f"{result['current_node']!r} after the task completed"
        )
    state = result["state"]
    print(f"  Functions Found: {state['function_count']}")
    print(f"  Quality Score: {state['quality_score']}/10")


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/") if len(sys.argv) > 1 else DEFAULT_BASE_URL)
