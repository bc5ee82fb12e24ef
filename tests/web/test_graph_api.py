"""The HTTP routes of web/graph_api.py over a real server: create, tools, definition, runs (waiting
and background), state and status, refused graphs and runs, failures, cancellation, restarts, the
token; and a graph run followed and reconnected over `/workflows/ws`.

Runs that must still be running while a request is made pass through a gated `wait` node (see
tests/web/graph_helpers.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import trio

from actors.workflows.examples.code_review import SAMPLE_CODE, code_review_graph
from tests.clients import events_only, ws_client
from tests.conftest import ON_BOTH_TRANSPORTS, RunningServer, StartServer
from tests.web.graph_helpers import (
    CODE_REVIEW_FUNCTIONS,
    CODE_REVIEW_NODES,
    FAILING_GRAPH,
    FIXABLE_CODE,
    GATED_GRAPH,
    GUARD,
    TWO_NODES,
    UNFIXABLE_CODE,
    Gates,
    assert_log_entry,
    create_graph,
    graph_state,
    make_tools,
    poll_until_finished,
    run_graph,
    start_background,
    wait_node,
    wait_published,
)

# --- the code-review example ---------------------------------------------------------------------


@ON_BOTH_TRANSPORTS
async def test_the_code_review_run_completes_with_the_guides_result(gserver: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, code_review_graph())
        initial = {"code": SAMPLE_CODE, "threshold": 7, "max_iterations": 3}
        body = await run_graph(http, graph_id, initial)
    assert set(body) == {"run_id", "status", "current_node", "final_state", "execution_log"}
    assert body["status"] == "completed"
    assert body["current_node"] == "END"
    final = body["final_state"]
    assert final["function_count"] == 3
    assert [f["name"] for f in final["functions"]] == ["subtotal", "apply_discount", "order_total"]
    assert final["quality_score"] == 8.5
    assert final["issue_count"] == 3
    assert (final["threshold"], final["max_iterations"]) == (7, 3)
    log = body["execution_log"]
    assert len(log) == 5
    for entry, node, function in zip(log, CODE_REVIEW_NODES, CODE_REVIEW_FUNCTIONS, strict=True):
        assert_log_entry(entry, node, function)


async def test_a_loop_that_cannot_improve_stops_at_max_iterations(gserver: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, code_review_graph())
        initial = {"code": UNFIXABLE_CODE, "threshold": 7, "max_iterations": 3}
        body = await run_graph(http, graph_id, initial)
    assert body["status"] == "completed" and body["current_node"] == "END"
    assert body["final_state"]["quality_score"] == 6.0
    assert body["final_state"]["code"] == UNFIXABLE_CODE
    log = body["execution_log"]
    *passes, system = log
    assert system["node"] == "SYSTEM" and system["status"] == "terminated"
    assert system["details"]["reason"] == "Max iterations reached"
    assert datetime.fromisoformat(system["timestamp"]).utcoffset() == timedelta(0)
    runs = [entry["node"] for entry in passes]
    assert runs == ["extract", *CODE_REVIEW_NODES[1:] * 3]
    assert max(runs.count(node) for node in CODE_REVIEW_NODES) == 3
    assert all(entry["status"] == "completed" for entry in passes)


async def test_a_loop_whose_fixes_raise_the_score_ends_on_the_second_pass(
    gserver: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, code_review_graph())
        body = await run_graph(http, graph_id, {"code": FIXABLE_CODE, "threshold": 7})
    assert body["status"] == "completed" and body["current_node"] == "END"
    assert [entry["node"] for entry in body["execution_log"]] == [
        "extract", *CODE_REVIEW_NODES[1:] * 2
    ]
    final = body["final_state"]
    assert final["quality_score"] == 10.0
    assert final["issue_count"] == 0
    assert final["code"].count('"""TODO: describe what') == 8


async def test_node_params_are_passed_to_the_tool(gserver: RunningServer) -> None:
    """With `max_line_length: 200` for detect, the unfixable long lines are no issue at all."""
    definition = code_review_graph()
    definition["nodes"]["detect"]["params"] = {"max_line_length": 200}
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, definition)
        body = await run_graph(http, graph_id, {"code": UNFIXABLE_CODE, "threshold": 7})
    assert body["status"] == "completed"
    assert body["final_state"]["issue_count"] == 0
    assert body["final_state"]["quality_score"] == 10.0
    assert [entry["node"] for entry in body["execution_log"]] == CODE_REVIEW_NODES


async def test_a_condition_on_a_missing_key_fails_the_run_naming_the_key(
    gserver: RunningServer,
) -> None:
    definition = {
        "name": "missing-key",
        "nodes": {"a": {"function": "inc"}},
        "conditional_edges": {"a": {"condition": "score >= 1", "true": "END", "false": "a"}},
    }
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, definition)
        body = await run_graph(http, graph_id, {})
    assert body["status"] == "failed"
    assert "'score'" in body["error"] and "node a" in body["error"]
    assert body["final_state"] == {"count": 1}
    assert [(e["node"], e["status"]) for e in body["execution_log"]] == [("a", "completed")]


# --- background runs -----------------------------------------------------------------------------


async def test_a_background_run_reports_its_live_node_and_then_its_real_result(
    gserver: RunningServer, gates: Gates
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, GATED_GRAPH)
        run_id = await start_background(http, graph_id, {"count": 0, "label": "bg"})
        await gates.wait_reached("hold")
        await wait_published(http, run_id, 5)  # started; first: 3 events; hold: StepStarted
        status = await http.get(f"/graph/background/{run_id}/status")
        assert status.status_code == 200
        assert status.json() == {
            "run_id": run_id,
            "task_status": "running",
            "workflow_status": "running",
            "current_node": "hold",
        }
        live = await graph_state(http, run_id)
        assert live["status"] == "running" and live["current_node"] == "hold"
        assert live["state"] == {"count": 1, "label": "bg"}
        assert [entry["node"] for entry in live["execution_log"]] == ["first"]
        gates.open("hold")
        finished = await poll_until_finished(http, run_id)
        assert finished == {
            "run_id": run_id,
            "task_status": "completed",
            "workflow_status": "completed",
            "current_node": "END",
        }
        final = await graph_state(http, run_id)
    assert final["status"] == "completed" and final["current_node"] == "END"
    assert final["state"] == {"count": 2, "label": "bg", "waited": ["hold"]}
    for entry, node, function in zip(
        final["execution_log"], ["first", "hold", "last"], ["inc", "wait", "inc"], strict=True
    ):
        assert_log_entry(entry, node, function)
    assert "error" not in final


async def test_unknown_run_ids_get_404(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        status = await http.get("/graph/background/no-such-run/status")
        state = await http.get("/graph/state/no-such-run")
    assert status.status_code == 404
    assert status.json()["run_id"] == "no-such-run"
    assert status.json()["task_status"] == "not_found"
    assert state.status_code == 404
    assert "no-such-run" in state.json()["detail"]


async def test_a_run_that_is_not_a_graph_run_is_not_found(server: RunningServer) -> None:
    async with ws_client(server.ws_url) as client, httpx.AsyncClient(base_url=server.base_url) as http:
        started = await client.start("content-creation-workflow")
        await client.recv_until_terminal()
        run_id = started["run_id"]
        status = await http.get(f"/graph/background/{run_id}/status")
        state = await http.get(f"/graph/state/{run_id}")
    assert status.status_code == 404
    assert (status.json()["run_id"], status.json()["task_status"]) == (run_id, "not_found")
    assert state.status_code == 404
    assert state.json()["detail"] == f"Run {run_id} is not a graph run"


async def test_five_parallel_background_runs_each_get_their_own_result(
    gserver: RunningServer,
) -> None:
    def code_with(count: int) -> str:
        return "".join(f"def task_{count}_{i}():\n    pass\n\n\n" for i in range(count))

    counts = [1, 2, 3, 4, 5]
    run_ids: dict[int, str] = {}
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, code_review_graph())

        async def start(count: int) -> None:
            state = {"code": code_with(count), "threshold": 7, "max_iterations": 3}
            run_ids[count] = await start_background(http, graph_id, state)

        async with trio.open_nursery() as nursery:
            for count in counts:
                nursery.start_soon(start, count)
        assert len(set(run_ids.values())) == 5
        for count in counts:
            assert (await poll_until_finished(http, run_ids[count]))["task_status"] == "completed"
            final = await graph_state(http, run_ids[count])
            assert final["status"] == "completed" and final["current_node"] == "END"
            assert final["state"]["function_count"] == count
            names = [f["name"] for f in final["state"]["functions"]]
            assert names == [f"task_{count}_{i}" for i in range(count)]


# --- refused graphs and runs ---------------------------------------------------------------------


def with_condition(condition: str) -> dict[str, Any]:
    definition = code_review_graph()
    definition["conditional_edges"]["check_quality"]["condition"] = condition
    return definition


def with_changes(**changes: Any) -> dict[str, Any]:
    return {**code_review_graph(), **changes}


ONE_NODE = {"extract": {"function": "extract_functions"}}

INVALID_GRAPHS: list[tuple[str, Any, list[str]]] = [
    ("unknown tool", with_changes(nodes={**ONE_NODE, "x": {"function": "nope"}}, edges={},
                                  conditional_edges={}), ["nodes.x.function", "'nope'"]),
    ("edge to a missing node", with_changes(edges={"extract": "ghost"}), ["edges.extract", "'ghost'"]),
    ("conditional edge to a missing node",
     with_changes(conditional_edges={"check_quality": {"condition": "quality_score >= 7",
                                                      "true": "ghost", "false": "END"}}),
     ["conditional_edges.check_quality.true", "'ghost'"]),
    ("edge from a missing node", with_changes(edges={"ghost": "extract"}), ["edges.ghost", "'ghost'"]),
    ("unparsable condition", with_condition("quality_score >="),
     ["conditional_edges.check_quality.condition", "position"]),
    ("no nodes", {"name": "empty", "nodes": {}}, ["nodes", "at least one node"]),
    ("conditional_edges null", with_changes(conditional_edges=None), ["conditional_edges", "null"]),
    ("edges null", with_changes(edges=None), ["edges", "null"]),
    ("nodes as a list", with_changes(nodes=[{"function": "extract_functions"}]), ["nodes", "array"]),
    ("function as a number", {"name": "n", "nodes": {"a": {"function": 5}}},
     ["nodes.a.function", "string"]),
    ("name missing", {"nodes": ONE_NODE}, ["name"]),
    ("unknown top-level field", with_changes(bogus=1), ["bogus"]),
    ("unknown field in a node", with_changes(nodes={"extract": {"function": "extract_functions",
                                                               "retries": 3}}, edges={},
                                             conditional_edges={}), ["nodes.extract", "retries"]),
    ("a node named END", {"name": "n", "nodes": {"END": {"function": "extract_functions"}}},
     ["nodes.END", "reserved"]),
    ("params the tool does not accept",
     {"name": "n", "nodes": {"d": {"function": "detect_issues", "params": {"max_len": 80}}}},
     ["nodes.d.params", "max_len", "max_line_length"]),
    ("body a JSON array", [code_review_graph()], ["array"]),
    ("a condition calling a function", with_condition("len(code) > 0"),
     ["conditional_edges.check_quality.condition", "function calls are not allowed"]),
    ("a condition calling __import__", with_condition("__import__('os').system('true')"),
     ["conditional_edges.check_quality.condition", "function calls are not allowed"]),
    ("a condition with a subscript", with_condition("issues[0] == 1"),
     ["conditional_edges.check_quality.condition"]),
]


@pytest.mark.parametrize(
    ("definition", "named"), [case[1:] for case in INVALID_GRAPHS], ids=[c[0] for c in INVALID_GRAPHS]
)
async def test_invalid_graphs_are_refused_with_422_naming_the_problem(
    server: RunningServer, definition: Any, named: list[str]
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.post("/graph/create", json=definition)
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        for part in named:
            assert part in detail
        assert (await http.get("/runs")).json() == {"runs": [], "next": None}


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b'{"name": "x", "nodes": '])
async def test_a_create_body_that_is_not_json_is_refused_with_422(
    server: RunningServer, body: bytes
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.post(
            "/graph/create", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 422
    assert "request body" in answer.json()["detail"] and "JSON" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("request_body", "named"),
    [
        ({"initial_state": {}}, "graph_id is required"),
        ({"graph_id": 5, "initial_state": {}}, "graph_id must be a string, got integer"),
        ({"graph_id": "G", "initial_state": {}, "priority": 1},
         "unknown field for the run request: priority"),
        ({"graph_id": "G", "initial_state": {"max_iterations": 0}},
         "initial_state.max_iterations must be a positive integer, got 0"),
        ({"graph_id": "G", "initial_state": {"max_iterations": "3"}},
         "initial_state.max_iterations must be a positive integer, got '3'"),
        ({"graph_id": "G", "initial_state": []},
                     "initial_state must be an object, got array"),
        ({"graph_id": "G", "initial_state": None},
                     "initial_state must be an object, got null"),
    ],
)
@pytest.mark.parametrize("route", ["/graph/run", "/graph/run/background"])
async def test_invalid_run_requests_are_refused_with_422(
    gserver: RunningServer, route: str, request_body: dict[str, Any], named: str
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, TWO_NODES)
        if request_body.get("graph_id") == "G":
            request_body = {**request_body, "graph_id": graph_id}
        answer = await http.post(route, json=request_body)
        assert answer.status_code == 422, answer.text
        assert named in answer.json()["detail"]
        assert (await http.get("/runs")).json() == {"runs": [], "next": None}


@pytest.mark.parametrize("route", ["/graph/run", "/graph/run/background"])
async def test_a_run_of_an_unknown_graph_gets_404(server: RunningServer, route: str) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.post(route, json={"graph_id": "no-such-graph", "initial_state": {}})
    assert answer.status_code == 404
    assert "no-such-graph" in answer.json()["detail"]


# --- the server's bounds on a run ----------------------------------------------------------------

SELF_LOOP = {"name": "self-loop", "nodes": {"a": {"function": "inc"}}, "edges": {"a": "a"}}
TWO_NODE_LOOP = {
    "name": "two-node-loop",
    "nodes": {"a": {"function": "inc"}, "b": {"function": "inc"}},
    "edges": {"a": "b", "b": "a"},
}


@pytest.mark.parametrize(("settings", "bound"), [({}, 1000), ({"graph_max_iterations": 5}, 5)])
@pytest.mark.parametrize("route", ["/graph/run", "/graph/run/background"])
async def test_a_max_iterations_above_the_servers_bound_is_refused_with_422_naming_it(
    start_server: StartServer, gates: Gates, route: str, settings: dict[str, Any], bound: int
) -> None:
    server = await start_server(tools=make_tools(gates), **settings)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        graph_id = await create_graph(http, SELF_LOOP)
        for value in (bound + 1, 2**64 - 1):
            with trio.fail_after(GUARD):
                answer = await http.post(
                    route, json={"graph_id": graph_id, "initial_state": {"max_iterations": value}}
                )
            assert answer.status_code == 422, answer.text
            assert answer.json()["detail"] == (
                f"initial_state.max_iterations must be at most {bound} (the server's"
                f" --graph-max-iterations), got {value}"
            )
        assert (await http.get("/runs")).json() == {"runs": [], "next": None}


async def test_a_loop_graph_fails_at_the_servers_bound_on_node_passes(
    start_server: StartServer, gates: Gates
) -> None:
    """Each node may run 6 times, but the server allows 6 passes in all: `POST /graph/run`
    answers with the run failed after a's third pass; a self-loop at its own `max_iterations`
    (the bound) still completes as it did."""
    server = await start_server(tools=make_tools(gates), graph_max_iterations=6)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        graph_id = await create_graph(http, TWO_NODE_LOOP)
        body = await run_graph(http, graph_id, {"count": 0, "max_iterations": 6})
        assert body["status"] == "failed"
        assert body["error"] == (
            "the run reached 6 node passes, the server's limit per run"
            " (--graph-max-iterations), before node a could run"
        )
        assert [e["node"] for e in body["execution_log"]] == ["a", "b"] * 3
        assert body["final_state"] == {"count": 6, "max_iterations": 6}
        self_loop = await create_graph(http, SELF_LOOP)
        body = await run_graph(http, self_loop, {"max_iterations": 6})
        assert body["status"] == "completed"
        assert body["execution_log"][-1]["details"]["reason"] == "Max iterations reached"


async def test_a_run_that_would_exceed_max_run_events_fails_within_it(
    start_server: StartServer, gates: Gates
) -> None:
    """A node pass is three events (`StepStarted`, `StepCompleted`, `GraphTransition`): with 20
    events per run, the sixth pass's `GraphTransition` (the 19th event) would leave no room for
    a cancellation's two closing events; it is refused, and the run fails in 19 events."""
    server = await start_server(tools=make_tools(gates), max_run_events=20)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        graph_id = await create_graph(http, TWO_NODE_LOOP)
        body = await run_graph(http, graph_id, {"count": 0, "max_iterations": 10})
        assert body["status"] == "failed"
        assert body["error"] == (
            "the run would exceed 20 events, the server's limit per run (--max-run-events)"
        )
        assert [e["node"] for e in body["execution_log"]] == ["a", "b"] * 3
        record = (await http.get(f"/runs/{body['run_id']}")).json()
    assert (record["status"], record["event_count"]) == ("ERROR", 19)


# --- failures ------------------------------------------------------------------------------------


async def test_a_failing_tool_fails_its_run_and_leaves_other_runs_alone(
    gserver: RunningServer, gates: Gates
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        gated = await create_graph(http, GATED_GRAPH)
        failing = await create_graph(http, FAILING_GRAPH)
        other = await start_background(http, gated, {"count": 10})
        await gates.wait_reached("hold")
        run_id = await start_background(http, failing, {"count": 0})
        status = await poll_until_finished(http, run_id)
        assert status["task_status"] == "failed" and status["workflow_status"] == "failed"
        assert status["current_node"] == "explode"
        assert "explode" in status["error"] and "tool exploded" in status["error"]
        state = await graph_state(http, run_id)
        assert state["status"] == "failed"
        assert state["error"] == status["error"]
        assert state["state"] == {"count": 1}
        first, explode = state["execution_log"]
        assert_log_entry(first, "first", "inc")
        assert set(explode) == {"node", "status", "timestamp", "details"}
        assert (explode["node"], explode["status"]) == ("explode", "failed")
        assert explode["details"]["function"] == "boom"
        assert explode["details"]["error"] == "RuntimeError: tool exploded"
        assert (await graph_state(http, other))["status"] == "running"
        gates.open("hold")
        assert (await poll_until_finished(http, other))["task_status"] == "completed"
        final = await graph_state(http, other)
        assert final["state"] == {"count": 12, "waited": ["hold"]}
        runs = {r["run_id"]: r["status"] for r in (await http.get("/runs")).json()["runs"]}
    assert runs == {run_id: "ERROR", other: "COMPLETED"}


async def test_post_graph_run_of_a_failing_graph_answers_with_the_failed_run(
    gserver: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, FAILING_GRAPH)
        body = await run_graph(http, graph_id, {})
    assert body["status"] == "failed"
    assert "tool exploded" in body["error"]
    assert [(e["node"], e["status"]) for e in body["execution_log"]] == [
        ("first", "completed"), ("explode", "failed"),
    ]


# --- graph runs are runs -------------------------------------------------------------------------


async def test_graph_runs_are_listed_in_runs(gserver: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, TWO_NODES)
        body = await run_graph(http, graph_id, {"count": 5})
        runs = (await http.get("/runs")).json()["runs"]
        one = (await http.get(f"/runs/{body['run_id']}")).json()
    assert [r["run_id"] for r in runs] == [body["run_id"]]
    assert runs[0] == one
    assert one["workflow_id"] == graph_id and one["workflow_name"] == "two-nodes"
    assert one["status"] == "COMPLETED"
    assert json.loads(one["input"]) == {"count": 5}


async def test_a_graph_run_is_cancelled_over_the_runs_api(
    gserver: RunningServer, gates: Gates
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, GATED_GRAPH)
        run_id = await start_background(http, graph_id, {})
        await gates.wait_reached("hold")
        wrong = await http.post(f"/workflows/not-this-graph/runs/{run_id}/cancel")
        assert wrong.status_code == 404
        answer = await http.post(f"/workflows/{graph_id}/runs/{run_id}/cancel")
        assert answer.status_code == 200
        assert answer.json()["status"] == "cancelling"
        status = await poll_until_finished(http, run_id)
        assert status["task_status"] == "cancelled"
        state = await graph_state(http, run_id)
        assert state["status"] == "cancelled"
        assert state["state"] == {"count": 1}
        assert [entry["node"] for entry in state["execution_log"]] == ["first"]
        assert (await http.get(f"/runs/{run_id}")).json()["status"] == "CANCELLED"
        again = await http.post(f"/workflows/{graph_id}/runs/{run_id}/cancel")
        assert again.status_code == 409


async def test_a_graph_and_its_runs_outlive_a_server_restart(
    start_server: StartServer, gates: Gates
) -> None:
    first = await start_server(tools=make_tools(gates))
    async with httpx.AsyncClient(base_url=first.base_url) as http:
        graph_id = await create_graph(http, code_review_graph())
        before = await run_graph(http, graph_id, {"code": SAMPLE_CODE, "threshold": 7})
    await first.stop()
    second = await start_server(tools=make_tools(gates))
    async with httpx.AsyncClient(base_url=second.base_url) as http:
        definition = await http.get(f"/graph/{graph_id}")
        assert definition.status_code == 200
        assert definition.json()["name"] == "code_review_workflow"
        old = await graph_state(http, before["run_id"])
        assert old["status"] == "completed" and old["current_node"] == "END"
        assert old["state"] == before["final_state"]
        assert old["execution_log"] == before["execution_log"]
        after = await run_graph(http, graph_id, {"code": SAMPLE_CODE, "threshold": 7})
        runs = [r["run_id"] for r in (await http.get("/runs")).json()["runs"]]
    assert after["status"] == "completed" and after["run_id"] != before["run_id"]
    assert after["final_state"]["quality_score"] == 8.5
    assert runs == [after["run_id"], before["run_id"]]


async def test_a_graph_whose_tool_is_gone_after_a_restart_is_refused_naming_the_tool(
    start_server: StartServer, gates: Gates
) -> None:
    first = await start_server(tools=make_tools(gates))
    async with httpx.AsyncClient(base_url=first.base_url) as http:
        graph_id = await create_graph(http, TWO_NODES)
    await first.stop()
    second = await start_server()  # the default tools: no `inc`
    async with httpx.AsyncClient(base_url=second.base_url) as http:
        answer = await http.post("/graph/run", json={"graph_id": graph_id, "initial_state": {}})
        assert (await http.get(f"/graph/{graph_id}")).status_code == 200
        runs = (await http.get("/runs")).json()["runs"]
    assert answer.status_code == 422
    assert graph_id in answer.json()["detail"] and "'inc'" in answer.json()["detail"]
    assert runs == []


# --- a graph run over /workflows/ws --------------------------------------------------------------


async def test_a_graph_run_reconnected_mid_way_over_workflows_ws_misses_nothing(
    gserver: RunningServer, gates: Gates
) -> None:
    """Events 0..10 of a three-node run: the first connection reads 0..4, the run moves on while
    no one listens, the second gets exactly 5..7 as catch_up, then subscribed, then 8..10."""
    chain = {
        "name": "three-gates",
        "nodes": {"a": wait_node("a"), "b": wait_node("b"), "c": wait_node("c")},
        "edges": {"a": "b", "b": "c"},
    }
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, chain)
        run_id = await start_background(http, graph_id, {})
        await gates.wait_reached("a")
        await wait_published(http, run_id, 2)
        async with ws_client(gserver.ws_url) as first:
            await first.send({"action": "reconnect", "run_id": run_id, "last_event_index": -1})
            header = await first.recv()
            assert header["event"] == "catch_up"
            assert (header["missed_events"], header["current_event_count"]) == (2, 2)
            seen = [await first.recv(), await first.recv()]
            assert (await first.recv())["event"] == "subscribed"
            gates.open("a")
            while seen[-1]["event_index"] < 4:
                seen.append(await first.recv())
        gates.open("b")
        await gates.wait_reached("c")
        await wait_published(http, run_id, 8)
        async with ws_client(gserver.ws_url) as second:
            last = seen[-1]["event_index"]
            await second.send({"action": "reconnect", "run_id": run_id, "last_event_index": last})
            header = await second.recv()
            assert header["event"] == "catch_up"
            assert (header["missed_events"], header["current_event_count"]) == (3, 8)
            caught_up = [await second.recv() for _ in range(3)]
            assert (await second.recv())["event"] == "subscribed"
            gates.open("c")
            live = await second.recv_until_terminal()
    frames = [*seen, *caught_up, *live]
    assert frames == events_only(frames)
    assert [f["event_index"] for f in frames] == list(range(11))
    assert {f["run_id"] for f in frames} == {run_id}
    assert [f["event"] for f in frames] == [
        "WorkflowStarted",
        *["StepStarted", "StepCompleted", "GraphTransition"] * 3,
        "WorkflowCompleted",
    ]
    assert [f["node"] for f in frames if f["event"] == "StepStarted"] == ["a", "b", "c"]
    assert frames[-1]["final_state"] == {"waited": ["a", "b", "c"]}


# --- tools, definitions, health, token -----------------------------------------------------------


async def test_graph_tools_lists_the_five_code_review_tools(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get("/graph/tools")
    assert answer.status_code == 200
    tools = answer.json()["tools"]
    assert [t["name"] for t in tools] == CODE_REVIEW_FUNCTIONS
    for tool in tools:
        assert set(tool) == {"name", "description", "params"}
        assert isinstance(tool["description"], str) and tool["description"]
    params = {t["name"]: t["params"] for t in tools}
    assert params["detect_issues"] == ["max_line_length", "max_complexity"]
    assert params["check_quality_score"] == ["threshold"]
    assert params["extract_functions"] == []


async def test_get_graph_returns_its_definition(server: RunningServer) -> None:
    definition = code_review_graph()
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        created = await http.post("/graph/create", json=definition)
        graph_id = created.json()["graph_id"]
        assert created.json()["start_node"] == "extract"
        answer = await http.get(f"/graph/{graph_id}")
        missing = await http.get("/graph/no-such-graph")
    assert answer.status_code == 200
    body = answer.json()
    assert body["graph_id"] == graph_id
    assert body["name"] == definition["name"]
    assert body["edges"] == definition["edges"]
    assert body["conditional_edges"] == definition["conditional_edges"]
    assert {name: node["function"] for name, node in body["nodes"].items()} == {
        name: node["function"] for name, node in definition["nodes"].items()
    }
    assert all(node["params"] == {} for node in body["nodes"].values())
    assert missing.status_code == 404
    assert "no-such-graph" in missing.json()["detail"]


async def test_health_is_healthy(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get("/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "healthy"


async def test_with_a_token_graph_routes_want_it(start_server: StartServer) -> None:
    srv = await start_server(token="s3cret")
    async with httpx.AsyncClient(base_url=srv.base_url) as http:
        refused = [
            await http.get("/graph/tools"),
            await http.post("/graph/create", json=code_review_graph()),
            await http.get("/graph/some-id"),
            await http.post("/graph/run", json={"graph_id": "g", "initial_state": {}}),
            await http.post("/graph/run/background", json={"graph_id": "g", "initial_state": {}}),
            await http.get("/graph/background/r/status"),
            await http.get("/graph/state/r"),
            await http.get("/graph/tools", headers={"Authorization": "Bearer wrong"}),
        ]
        assert [answer.status_code for answer in refused] == [401] * len(refused)
        assert all("Authorization" in answer.json()["detail"] for answer in refused)
        assert (await http.get("/health")).status_code == 200
        auth = {"Authorization": "Bearer s3cret"}
        created = await http.post("/graph/create", json=code_review_graph(), headers=auth)
        assert created.status_code == 200
        graph_id = created.json()["graph_id"]
        answer = await http.post(
            "/graph/run",
            json={"graph_id": graph_id, "initial_state": {"code": SAMPLE_CODE, "threshold": 7}},
            headers=auth,
        )
    assert answer.status_code == 200 and answer.json()["final_state"]["quality_score"] == 8.5
