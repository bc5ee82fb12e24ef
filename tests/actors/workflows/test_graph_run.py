"""actors/workflows/graph_run.py: graph runs on a real runtime (memory store): the events of a
run in order and their fields, `iteration` per node, the `max_iterations` limit, the server's
bound on a run's node passes (`max_passes`), failing tools and conditions, tools that return bad
updates or mutate their argument, cancellation (async and sync tools), refused initial states,
timestamps; and a property test of the executor on random graphs, its events checked against a
reference walk.

The helpers at the top (the tool registry, `build`, `run_graph`) are shared with
test_graph_view.py, which folds the frames of these runs."""

from __future__ import annotations

import itertools
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import orjson
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import RunStatus, WorkflowCatalog, open_runtime
from actors.events import RunInfo
from actors.store.base import RunRecord
from actors.store.memory import open_memory_store
from actors.workflows.catalog import WorkflowFailed
from actors.workflows.graph import END, Graph, GraphDefinition, compile_graph
from actors.workflows.graph_run import (
    DEFAULT_MAX_ITERATIONS,
    DEFAULT_MAX_PASSES,
    LIMIT_MESSAGE,
    GraphRun,
    InvalidInitialState,
    max_iterations_of,
)
from actors.workflows.tools import ToolRegistry
from tests.actors.helpers import follow_all
from tests.actors.workflows.test_graph import (
    random_graphs,
    reference_next,
    reference_start,
)

GUARD = 10  # seconds: no run here takes more than a fraction of that

# --- tools, graphs, runs -----------------------------------------------------------------------


@attrs.frozen
class Gate:
    """`reached` is set when a gated tool starts; it then waits for `release`."""

    reached: trio.Event = attrs.Factory(trio.Event)
    release: trio.Event = attrs.Factory(trio.Event)
    thread_release: threading.Event = attrs.Factory(threading.Event)


def make_tools(gate: Gate | None = None) -> ToolRegistry:
    tools = ToolRegistry()
    gate = gate or Gate()

    @tools.tool
    def inc(state: dict[str, Any]) -> dict[str, Any]:
        """Add one to `count` (sync: runs in a worker thread)."""
        return {"count": state.get("count", 0) + 1}

    @tools.tool
    async def add(state: dict[str, Any], amount: int = 1) -> dict[str, Any]:
        """Add `amount` to `total`."""
        await trio.lowlevel.checkpoint()
        return {"total": state["total"] + amount}

    @tools.tool
    def noop(state: dict[str, Any]) -> None:
        pass

    @tools.tool
    def boom(state: dict[str, Any]) -> None:
        raise RuntimeError("tool exploded")

    @tools.tool
    def not_a_dict(state: dict[str, Any]) -> list[int]:
        return [1, 2]

    @tools.tool
    def a_set(state: dict[str, Any]) -> dict[str, Any]:
        return {"tags": {"a", "b"}}

    @tools.tool
    def vandal(state: dict[str, Any]) -> dict[str, Any]:
        state["count"] = 1000
        state["log"].append("vandalised")
        state["nested"]["deep"] = None
        return {"touched": True}

    @tools.tool
    async def gated(state: dict[str, Any]) -> dict[str, Any]:
        gate.reached.set()
        await gate.release.wait()
        return {"gated": True}

    @tools.tool
    def gated_sync(state: dict[str, Any]) -> dict[str, Any]:
        trio.from_thread.run_sync(gate.reached.set)
        gate.thread_release.wait(GUARD)
        return {"gated": True}

    return tools


TOOLS = make_tools()


def build(data: dict[str, Any], tools: ToolRegistry = TOOLS) -> Graph:
    definition = GraphDefinition.from_json({"name": "test-graph", **data})
    return compile_graph(str(uuid.uuid4()), definition, tools)


def chain(*functions: str) -> dict[str, Any]:
    """Nodes n0..nk running `functions` in a line."""
    names = [f"n{i}" for i in range(len(functions))]
    return {
        "nodes": {name: {"function": fn} for name, fn in zip(names, functions, strict=True)},
        "edges": dict(itertools.pairwise(names)),
    }


def loop(condition: str) -> dict[str, Any]:
    """a (inc) -> b (noop) -> `condition` ? END : a."""
    return {
        "nodes": {"a": {"function": "inc"}, "b": {"function": "noop"}},
        "edges": {"a": "b"},
        "conditional_edges": {"b": {"condition": condition, "true": END, "false": "a"}},
    }


async def run_graph(
    graph: Graph, initial_state: dict[str, Any], max_passes: int = DEFAULT_MAX_PASSES
) -> tuple[RunRecord, list[str]]:
    """Run `graph` to its end on a fresh runtime: the run's record and its frames (followed
    live, and checked to be the history the runtime then reports)."""
    async with open_memory_store() as store, open_runtime(store, WorkflowCatalog()) as runtime:
        info = await runtime.start_workflow(
            GraphRun.of(graph, initial_state, max_passes), orjson.dumps(initial_state).decode()
        )
        with trio.fail_after(GUARD):
            frames = await follow_all(runtime, info.run_id)
        record, history = await runtime.history(info.run_id)
    assert history == frames
    return record, frames


def decode(frames: list[str]) -> list[dict[str, Any]]:
    return [orjson.loads(frame) for frame in frames]


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [event["event"] for event in events]


def passes(events: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(e["node"], e["iteration"]) for e in events if e["event"] == "StepStarted"]


def transitions(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["from"], e["to"]) for e in events if e["event"] == "GraphTransition"]


# --- a run, event by event ---------------------------------------------------------------------


async def test_a_two_node_run_emits_its_events_in_order() -> None:
    graph = build(
        {
            "nodes": {"a": {"function": "inc"}, "b": {"function": "add", "params": {"amount": 5}}},
            "edges": {"a": "b"},
        }
    )
    record, frames = await run_graph(graph, {"count": 0, "total": 1})
    events = decode(frames)

    assert kinds(events) == [
        "WorkflowStarted",
        "StepStarted",
        "StepCompleted",
        "GraphTransition",
        "StepStarted",
        "StepCompleted",
        "GraphTransition",
        "WorkflowCompleted",
    ]
    assert [e["event_index"] for e in events] == list(range(8))
    assert {(e["workflow_id"], e["workflow_name"]) for e in events} == {
        (graph.graph_id, "test-graph")
    }
    started_a, completed_a, to_b, started_b, completed_b, to_end, done = events[1:]
    assert (started_a["node"], started_a["step_name"], started_a["step_index"]) == ("a", "a", 0)
    assert started_a["iteration"] == 1
    assert completed_a["state_update"] == {"count": 1}
    assert completed_a["function"] == "inc"
    assert completed_a["step_id"] == started_a["step_id"]
    assert completed_a["duration_ms"] >= 0
    assert (to_b["from"], to_b["to"]) == ("a", "b")
    assert (started_b["node"], started_b["step_index"], started_b["iteration"]) == ("b", 1, 1)
    assert started_b["step_id"] != started_a["step_id"]
    assert completed_b["state_update"] == {"total": 6}
    assert completed_b["function"] == "add"
    assert (to_end["from"], to_end["to"]) == ("b", END)
    assert done["final_state"] == {"count": 1, "total": 6}
    assert record.status is RunStatus.COMPLETED
    assert record.info.workflow_id == graph.graph_id


async def test_iteration_counts_the_passes_of_each_node() -> None:
    _, frames = await run_graph(build(loop("count >= 3")), {"count": 0})
    events = decode(frames)
    assert passes(events) == [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]
    assert transitions(events) == [("a", "b"), ("b", "a")] * 2 + [("a", "b"), ("b", END)]
    assert "GraphLimitReached" not in kinds(events)
    assert events[-1]["final_state"] == {"count": 3}


async def test_the_limit_stops_a_node_before_its_pass_beyond_max_iterations() -> None:
    record, frames = await run_graph(build(loop("count >= 100")), {"count": 0, "max_iterations": 3})
    events = decode(frames)
    assert passes(events) == [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]
    assert kinds(events)[-3:] == ["GraphTransition", "GraphLimitReached", "WorkflowCompleted"]
    assert transitions(events)[-1] == ("b", "a")
    limit = events[-2]
    assert (limit["node"], limit["message"], limit["max_iterations"]) == ("a", LIMIT_MESSAGE, 3)
    assert events[-1]["final_state"] == {"count": 3, "max_iterations": 3}
    assert record.status is RunStatus.COMPLETED


async def test_the_default_limit_is_ten_passes() -> None:
    _, frames = await run_graph(build(loop("count >= 100")), {"count": 0})
    events = decode(frames)
    assert [n for n, _ in passes(events)].count("a") == DEFAULT_MAX_ITERATIONS == 10
    assert events[-1]["final_state"] == {"count": 10}
    assert events[-2]["event"] == "GraphLimitReached"


async def test_a_self_loop_with_max_iterations_one_runs_once() -> None:
    graph = build({"nodes": {"a": {"function": "inc"}}, "edges": {"a": "a"}})
    _, frames = await run_graph(graph, {"max_iterations": 1})
    events = decode(frames)
    assert passes(events) == [("a", 1)]
    assert transitions(events) == [("a", "a")]
    assert events[-2]["event"] == "GraphLimitReached"
    assert events[-1]["final_state"] == {"max_iterations": 1, "count": 1}


# --- the server's bound on node passes ----------------------------------------------------------


async def test_a_run_making_more_node_passes_than_the_bound_fails_naming_it() -> None:
    """Two nodes in a loop, each allowed 5 passes: the bound of 6 passes over all nodes ends the
    run before a's fourth pass, with an error and no `GraphLimitReached`."""
    graph = build(loop("count >= 100"))
    record, frames = await run_graph(graph, {"count": 0, "max_iterations": 5}, max_passes=6)
    events = decode(frames)
    assert passes(events) == [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]
    assert kinds(events)[-2:] == ["GraphTransition", "WorkflowError"]
    assert transitions(events)[-1] == ("b", "a")
    assert events[-1]["error"] == (
        "the run reached 6 node passes, the server's limit per run (--graph-max-iterations),"
        " before node a could run"
    )
    assert record.status is RunStatus.ERROR


async def test_a_chain_longer_than_the_bound_fails_before_its_first_pass_beyond() -> None:
    record, frames = await run_graph(build(chain("inc", "inc", "inc", "inc")), {}, max_passes=3)
    events = decode(frames)
    assert passes(events) == [("n0", 1), ("n1", 1), ("n2", 1)]
    assert "before node n3 could run" in events[-1]["error"]
    assert record.status is RunStatus.ERROR


async def test_a_run_within_the_bound_completes_as_before() -> None:
    """Exactly `max_passes` passes, then END: no error. And a self-loop whose `max_iterations` is
    the bound stops at its own limit (`GraphLimitReached`, completed), which comes first."""
    record, frames = await run_graph(build(loop("count >= 3")), {"count": 0}, max_passes=6)
    assert kinds(decode(frames))[-1] == "WorkflowCompleted"
    assert record.status is RunStatus.COMPLETED
    self_loop = build({"nodes": {"a": {"function": "inc"}}, "edges": {"a": "a"}})
    record, frames = await run_graph(self_loop, {"max_iterations": 4}, max_passes=4)
    events = decode(frames)
    assert [n for n, _ in passes(events)] == ["a"] * 4
    assert kinds(events)[-2:] == ["GraphLimitReached", "WorkflowCompleted"]
    assert record.status is RunStatus.COMPLETED


# --- failures ----------------------------------------------------------------------------------


async def test_a_raising_tool_ends_the_run_with_step_error_then_workflow_error() -> None:
    record, frames = await run_graph(build(chain("inc", "boom", "inc")), {"count": 0})
    events = decode(frames)
    assert kinds(events) == [
        "WorkflowStarted",
        "StepStarted",
        "StepCompleted",
        "GraphTransition",
        "StepStarted",
        "StepError",
        "WorkflowError",
    ]
    step_error, workflow_error = events[-2:]
    assert (step_error["node"], step_error["function"]) == ("n1", "boom")
    assert step_error["error"] == "RuntimeError: tool exploded"
    assert step_error["step_id"] == events[-3]["step_id"]
    assert step_error["duration_ms"] >= 0
    assert workflow_error["error"] == "node n1 (boom) failed: RuntimeError: tool exploded"
    assert [n for n, _ in passes(events)] == ["n0", "n1"]  # n2 never runs
    assert record.status is RunStatus.ERROR


async def test_a_result_that_is_not_a_dict_fails_the_node() -> None:
    _, frames = await run_graph(build(chain("not_a_dict", "inc")), {})
    events = decode(frames)
    assert kinds(events)[-2:] == ["StepError", "WorkflowError"]
    assert events[-2]["error"].startswith("ToolResultError: tool not_a_dict returned list")
    assert "node n0 (not_a_dict) failed" in events[-1]["error"]


async def test_a_result_that_is_not_json_fails_the_node() -> None:
    _, frames = await run_graph(build(chain("a_set", "inc")), {})
    events = decode(frames)
    assert kinds(events)[-2:] == ["StepError", "WorkflowError"]
    error = events[-2]["error"]
    assert error.startswith("ToolResultError: tool a_set returned a state update that is not JSON")
    assert "StepCompleted" not in kinds(events)


async def test_a_node_sees_only_state_its_history_can_reproduce() -> None:
    """The history is the only truth: a value orjson can encode but JSON does not have (a
    datetime, a UUID, a tuple, NaN) must either fail the node as "not JSON" or reach the next
    node as what the history says (a string, a list, null). Today the next node gets the Python
    object while every view, and `final_state`, show its JSON form."""
    tools = ToolRegistry()

    @tools.tool
    def stamp(state: dict[str, Any]) -> dict[str, Any]:
        when = datetime(2024, 1, 1, tzinfo=UTC)
        return {"when": when, "id": uuid.UUID(int=1), "pair": (1, 2), "nan": float("nan")}

    @tools.tool
    def look(state: dict[str, Any]) -> dict[str, Any]:
        return {"seen": {key: type(value).__name__ for key, value in sorted(state.items())}}

    graph = build(
        {"nodes": {"a": {"function": "stamp"}, "b": {"function": "look"}}, "edges": {"a": "b"}},
        tools,
    )
    _, frames = await run_graph(graph, {})
    events = decode(frames)
    if events[-1]["event"] == "WorkflowError":
        assert "not JSON" in events[-2]["error"]
    else:
        seen = events[-1]["final_state"]["seen"]
        assert seen == {"id": "str", "nan": "NoneType", "pair": "list", "when": "str"}


async def test_a_condition_on_a_missing_key_fails_the_run_naming_the_key() -> None:
    graph = build(
        {
            "nodes": {"a": {"function": "inc"}, "b": {"function": "inc"}},
            "conditional_edges": {"a": {"condition": "score > 3", "true": END, "false": "b"}},
        }
    )
    record, frames = await run_graph(graph, {"count": 0})
    events = decode(frames)
    assert kinds(events) == ["WorkflowStarted", "StepStarted", "StepCompleted", "WorkflowError"]
    error = events[-1]["error"]
    assert "the condition of node a failed" in error
    assert "'score'" in error
    assert record.status is RunStatus.ERROR


async def test_a_tool_mutating_its_argument_changes_nothing_but_its_update() -> None:
    initial = {"count": 0, "log": ["x"], "nested": {"deep": {"n": 1}}}
    _, frames = await run_graph(build(chain("vandal", "inc")), initial)
    events = decode(frames)
    updates = [e["state_update"] for e in events if e["event"] == "StepCompleted"]
    assert updates == [{"touched": True}, {"count": 1}]
    assert events[-1]["final_state"] == {
        "count": 1,
        "log": ["x"],
        "nested": {"deep": {"n": 1}},
        "touched": True,
    }
    assert initial == {"count": 0, "log": ["x"], "nested": {"deep": {"n": 1}}}


async def test_the_run_starts_from_a_copy_of_the_initial_state() -> None:
    initial: dict[str, Any] = {"count": 5, "items": [1]}
    run = GraphRun.of(build(chain("inc")), initial)
    initial["count"] = 100
    initial["items"].append(2)
    assert run.initial_state == {"count": 5, "items": [1]}


# --- the initial state -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -1, "3", True, 2.5, None, [3]])
def test_an_invalid_max_iterations_is_refused_naming_the_key(value: Any) -> None:
    with pytest.raises(InvalidInitialState) as raised:
        GraphRun.of(build(chain("inc")), {"max_iterations": value})
    assert str(raised.value) == (
        f"initial_state.max_iterations must be a positive integer, got {value!r}"
    )


@pytest.mark.parametrize(("max_passes", "value"), [(DEFAULT_MAX_PASSES, 2**64 - 1), (5, 6)])
def test_a_max_iterations_above_the_servers_bound_is_refused_naming_both(
    max_passes: int, value: int
) -> None:
    with pytest.raises(InvalidInitialState) as raised:
        GraphRun.of(build(chain("inc")), {"max_iterations": value}, max_passes)
    assert str(raised.value) == (
        f"initial_state.max_iterations must be at most {max_passes} (the server's"
        f" --graph-max-iterations), got {value}"
    )


def test_the_servers_bound_allows_max_iterations_up_to_itself_and_lowers_the_default() -> None:
    assert DEFAULT_MAX_PASSES == 1000
    assert max_iterations_of({"max_iterations": 1000}) == 1000
    assert max_iterations_of({"max_iterations": 5}, 5) == 5
    assert max_iterations_of({}, 3) == 3
    lowered = GraphRun.of(build(chain("inc")), {}, 7)
    assert (lowered.max_iterations, lowered.max_passes) == (7, 7)
    run = GraphRun.of(build(chain("inc")), {}, 20)
    assert (run.max_iterations, run.max_passes) == (DEFAULT_MAX_ITERATIONS, 20)


def test_max_iterations_is_taken_from_the_state() -> None:
    assert max_iterations_of({}) == DEFAULT_MAX_ITERATIONS
    assert max_iterations_of({"max_iterations": 1}) == 1
    assert GraphRun.of(build(chain("inc")), {"max_iterations": 7}).max_iterations == 7


@pytest.mark.parametrize("state", [{"tags": {"a"}}, {"when": object()}, {1: "x"}])
def test_an_initial_state_that_is_not_json_is_refused(state: dict[Any, Any]) -> None:
    with pytest.raises(InvalidInitialState, match="^initial_state is not JSON: "):
        GraphRun.of(build(chain("inc")), state)


def test_the_run_is_the_graph_as_a_workflow() -> None:
    graph = build(chain("inc"))
    run = GraphRun.of(graph, {})
    assert (run.id, run.name, run.description) == (graph.graph_id, "test-graph", "graph test-graph")


# --- cancellation ------------------------------------------------------------------------------


async def cancel_at_gate(tool: str, gate: Gate) -> tuple[RunRecord, list[str]]:
    """Run n0 (inc) -> n1 (`tool`) -> n2 (inc); cancel it once `tool` is running."""
    graph = build(chain("inc", tool, "inc"), make_tools(gate))
    async with open_memory_store() as store, open_runtime(store, WorkflowCatalog()) as runtime:
        info = await runtime.start_workflow(GraphRun.of(graph, {"count": 0}), "{}")
        with trio.fail_after(GUARD):
            await gate.reached.wait()
            outcome = await runtime.cancel(info.run_id, "user said stop")
            frames = await follow_all(runtime, info.run_id)
        record = await runtime.get_run(info.run_id)
    assert outcome.cancelling
    return record, frames


@pytest.mark.parametrize("tool", ["gated", "gated_sync"])
async def test_cancelling_a_run_mid_node_ends_it_cancelled(tool: str) -> None:
    """An async tool is cancelled where it waits; a sync tool's thread is abandoned (it is let
    go afterwards) and the run ends without waiting for it."""
    gate = Gate()
    try:
        record, frames = await cancel_at_gate(tool, gate)
    finally:
        gate.thread_release.set()
    events = decode(frames)
    assert kinds(events) == [
        "WorkflowStarted",
        "StepStarted",
        "StepCompleted",
        "GraphTransition",
        "StepStarted",
        "WorkflowCancelled",
        "WorkflowCompleted",
    ]
    assert events[-2]["reason"] == "user said stop"
    assert (events[-1]["status"], events[-1]["reason"]) == ("cancelled", "user said stop")
    assert "final_state" not in events[-1]
    assert record.status is RunStatus.CANCELLED


# --- timestamps --------------------------------------------------------------------------------


async def test_graph_event_timestamps_are_timezone_aware_utc_iso_8601() -> None:
    _, frames = await run_graph(build(loop("count >= 100")), {"count": 0, "max_iterations": 2})
    events = decode(frames)
    stamped = [e for e in events if e["event"] not in ("WorkflowStarted",)]
    assert {e["event"] for e in stamped} == {
        "StepStarted",
        "StepCompleted",
        "GraphTransition",
        "GraphLimitReached",
        "WorkflowCompleted",
    }
    moments = [datetime.fromisoformat(e["timestamp"]) for e in stamped]
    assert all(m.tzinfo is not None and m.utcoffset() == timedelta(0) for m in moments)
    assert moments == sorted(moments)


async def test_a_step_error_carries_a_timezone_aware_timestamp() -> None:
    _, frames = await run_graph(build(chain("boom")), {})
    step_error = decode(frames)[-2]
    assert datetime.fromisoformat(step_error["timestamp"]).tzinfo is not None


# --- property: the executor walks as the reference says ----------------------------------------


@attrs.define
class Recorder:
    events: list[tuple[str, dict[str, Any]]] = attrs.Factory(list)

    async def __call__(self, kind: str, fields: dict[str, Any]) -> None:
        self.events.append((kind, fields))


def reference_walk(
    data: dict[str, Any], max_iterations: int, max_passes: int
) -> tuple[list[str], str]:
    """The nodes run, in order, and how the walk ended: "end", "limit" (a node's
    `max_iterations`) or "bound" (`max_passes` over all nodes). Each pass adds 1 to `count`."""
    runs = {name: 0 for name in data["nodes"]}
    order: list[str] = []
    current = reference_start(data)
    while current != END:
        if runs[current] >= max_iterations:
            return order, "limit"
        if len(order) >= max_passes:
            return order, "bound"
        runs[current] += 1
        order.append(current)
        current = reference_next(data, current, len(order))
    return order, "end"


@settings(max_examples=60, deadline=None)
@given(
    data=random_graphs(),
    limits=st.integers(min_value=1, max_value=4).flatmap(
        lambda most: st.tuples(st.just(most), st.integers(min_value=most, max_value=most + 2))
    ),
)
async def test_random_graphs_run_as_the_reference_walk(
    data: dict[str, Any], limits: tuple[int, int]
) -> None:
    """`GraphRun.execute` with a recording `emit`: the nodes it runs, their pass numbers, its
    transitions and where the limit or the bound stops it match the reference; no node runs
    more than `max_iterations` times, and the run makes at most `max_passes` passes."""
    max_iterations, max_passes = limits
    definition = GraphDefinition.from_json({"name": "random", **data})
    graph = compile_graph("gid", definition, make_tools())
    run = GraphRun.of(graph, {"count": 0, "max_iterations": max_iterations}, max_passes)
    emit = Recorder()
    order, ending = reference_walk(data, max_iterations, max_passes)
    if ending == "bound":
        with trio.fail_after(GUARD), pytest.raises(WorkflowFailed, match="--graph-max-iterations"):
            await run.execute(RunInfo("r", "gid", "random", "s"), emit)
    else:
        with trio.fail_after(GUARD):
            result = await run.execute(RunInfo("r", "gid", "random", "s"), emit)
        assert result["final_state"] == {"count": len(order), "max_iterations": max_iterations}
    started = [f for kind, f in emit.events if kind == "StepStarted"]
    assert [f["node"] for f in started] == order
    pass_numbers = [order[: i + 1].count(node) for i, node in enumerate(order)]
    assert [f["iteration"] for f in started] == pass_numbers
    assert max(f["iteration"] for f in started) <= max_iterations
    moves = [(f["from"], f["to"]) for kind, f in emit.events if kind == "GraphTransition"]
    assert [source for source, _ in moves] == order
    assert [target for _, target in moves[:-1]] == order[1:]
    assert len(order) <= max_passes
    limits = [f for kind, f in emit.events if kind == "GraphLimitReached"]
    if ending == "limit":
        assert len(limits) == 1 and emit.events[-1][0] == "GraphLimitReached"
        assert limits[0]["node"] == moves[-1][1]
        assert order.count(limits[0]["node"]) == max_iterations
    elif ending == "end":
        assert limits == [] and moves[-1][1] == END
    else:
        assert limits == [] and len(order) == max_passes
