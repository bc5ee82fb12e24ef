"""actors/graphs.py: graphs over a real runtime and SQLite store: create / get / definition,
unknown graphs, graphs and their runs across a reopened store and runtime (and a graph whose tool
is gone by then), starting runs, viewing them live and finished, waiting for them, and refusing
runs that are not graph runs or do not exist."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing

from actors import UnknownRun, WorkflowCatalog, open_runtime
from actors.graphs import Graphs, NotAGraphRun, UnknownGraph
from actors.store.sqlite import open_sqlite_store
from actors.workflows.graph import END, InvalidGraph
from actors.workflows.graph_run import InvalidInitialState
from actors.workflows.graph_view import GraphRunView, GraphStatus
from actors.workflows.tools import ToolRegistry
from tests.actors.helpers import catalog_of, chatty_workflow, wait_published
from tests.actors.workflows.test_graph_run import GUARD, Gate, make_tools

LOOP = {
    "name": "counter",
    "nodes": {
        "start": {"function": "add", "params": {"amount": 10}},
        "count": {"function": "inc"},
        "check": {"function": "noop"},
    },
    "edges": {"start": "count", "count": "check"},
    "conditional_edges": {"check": {"condition": "count >= 3", "true": END, "false": "count"}},
}

GATED = {
    "name": "gated",
    "nodes": {
        "first": {"function": "inc"},
        "wait": {"function": "gated"},
        "last": {"function": "inc"},
    },
    "edges": {"first": "wait", "wait": "last"},
}


@asynccontextmanager
async def open_graphs(
    path: Path, tools: ToolRegistry | None = None, catalog: WorkflowCatalog | None = None
) -> AsyncIterator[Graphs]:
    """One "process": a SQLite store on `path`, a runtime, and Graphs over it."""
    async with (
        open_sqlite_store(path) as store,
        open_runtime(store, catalog or WorkflowCatalog()) as runtime,
    ):
        yield Graphs(runtime, tools or make_tools())


# --- create / get / definition -----------------------------------------------------------------


async def test_create_then_get_and_definition(tmp_path: Path) -> None:
    async with open_graphs(tmp_path / "g.db") as graphs:
        graph = await graphs.create(LOOP)
        assert await graphs.get(graph.graph_id) is graph
        assert (graph.name, graph.start) == ("counter", "start")
        definition = await graphs.definition(graph.graph_id)
        assert definition == {
            **LOOP,
            "nodes": {
                "start": {"function": "add", "params": {"amount": 10}},
                "count": {"function": "inc", "params": {}},
                "check": {"function": "noop", "params": {}},
            },
        }
        other = await graphs.create(LOOP)
        assert other.graph_id != graph.graph_id


async def test_an_invalid_graph_is_refused_at_create(tmp_path: Path) -> None:
    async with open_graphs(tmp_path / "g.db") as graphs:
        with pytest.raises(InvalidGraph, match="nodes.a.function: unknown tool 'nope'"):
            await graphs.create({"name": "bad", "nodes": {"a": {"function": "nope"}}})
        with pytest.raises(InvalidGraph, match="conditional_edges must be an object, got null"):
            await graphs.create({**LOOP, "conditional_edges": None})


async def test_unknown_graph_ids_are_not_found(tmp_path: Path) -> None:
    async with open_graphs(tmp_path / "g.db") as graphs:
        with pytest.raises(UnknownGraph, match="^Graph X not found$") as raised:
            await graphs.get("X")
        assert raised.value.graph_id == "X"
        with pytest.raises(UnknownGraph, match="^Graph Y not found$"):
            await graphs.definition("Y")
        with pytest.raises(UnknownGraph, match="^Graph Z not found$"):
            await graphs.start("Z", {})
        assert await graphs.runtime.list_runs() == []


# --- runs --------------------------------------------------------------------------------------


async def test_wait_returns_the_finished_view(tmp_path: Path) -> None:
    async with open_graphs(tmp_path / "g.db") as graphs:
        graph = await graphs.create(LOOP)
        info = await graphs.start(graph.graph_id, {"total": 1})
        with trio.fail_after(GUARD):
            view = await graphs.wait(info.run_id)
        assert info.workflow_id == graph.graph_id
        assert view.run_id == info.run_id
        assert view.status is GraphStatus.COMPLETED
        assert view.current_node == END
        assert view.state == {"total": 11, "count": 3}
        assert [e["node"] for e in view.execution_log] == [
            "start", "count", "check", "count", "check", "count", "check",
        ]
        assert await graphs.view(info.run_id) == view


async def test_an_invalid_initial_state_starts_no_run(tmp_path: Path) -> None:
    async with open_graphs(tmp_path / "g.db") as graphs:
        graph = await graphs.create(LOOP)
        with pytest.raises(InvalidInitialState, match="initial_state.max_iterations"):
            await graphs.start(graph.graph_id, {"total": 1, "max_iterations": 0})
        assert await graphs.runtime.list_runs() == []


async def test_the_bound_on_node_passes_refuses_max_iterations_above_it_and_ends_runs(
    tmp_path: Path,
) -> None:
    async with open_graphs(tmp_path / "g.db") as unbounded:
        graphs = Graphs(unbounded.runtime, unbounded.tools, max_passes=4)
        graph = await graphs.create(LOOP)
        with pytest.raises(InvalidInitialState) as refused:
            await graphs.start(graph.graph_id, {"total": 1, "max_iterations": 5})
        assert str(refused.value) == (
            "initial_state.max_iterations must be at most 4 (the server's"
            " --graph-max-iterations), got 5"
        )
        assert await graphs.runtime.list_runs() == []
        info = await graphs.start(graph.graph_id, {"total": 1})
        with trio.fail_after(GUARD):
            view = await graphs.wait(info.run_id)
        assert view.status is GraphStatus.FAILED
        assert view.error is not None and "reached 4 node passes" in view.error
        assert [e["node"] for e in view.execution_log] == ["start", "count", "check", "count"]
        assert view.current_node == "check"


async def test_view_while_running_shows_the_current_node(tmp_path: Path) -> None:
    gate = Gate()
    async with open_graphs(tmp_path / "g.db", make_tools(gate)) as graphs:
        graph = await graphs.create(GATED)
        info = await graphs.start(graph.graph_id, {"count": 5})
        with trio.fail_after(GUARD):
            await gate.reached.wait()
            # started, first: start, complete, transition; wait: start
            await wait_published(graphs.runtime, info.run_id, 5)
            running = await graphs.view(info.run_id)
            gate.release.set()
            finished = await graphs.wait(info.run_id)
    assert running.status is GraphStatus.RUNNING and not running.finished
    assert running.current_node == "wait"
    assert running.state == {"count": 6}
    assert [(e["node"], e["status"]) for e in running.execution_log] == [("first", "completed")]
    assert finished.status is GraphStatus.COMPLETED
    assert finished.state == {"count": 7, "gated": True}


async def test_wait_follows_a_running_run_to_its_end(tmp_path: Path) -> None:
    gate = Gate()
    async with open_graphs(tmp_path / "g.db", make_tools(gate)) as graphs:
        graph = await graphs.create(GATED)
        info = await graphs.start(graph.graph_id, {})
        waited: list[GraphRunView] = []

        async def wait() -> None:
            waited.append(await graphs.wait(info.run_id))

        with trio.fail_after(GUARD):
            await gate.reached.wait()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await trio.testing.wait_all_tasks_blocked()
                assert waited == []  # still waiting: the run is held at the gate
                gate.release.set()
    assert waited[0].status is GraphStatus.COMPLETED
    assert waited[0].state == {"count": 2, "gated": True}


async def test_runs_that_are_not_graph_runs_are_refused(tmp_path: Path) -> None:
    catalog = catalog_of(chatty_workflow("chatty", 2))
    async with open_graphs(tmp_path / "g.db", catalog=catalog) as graphs:
        await graphs.create(LOOP)
        info = await graphs.runtime.start("chatty", "hello")
        with pytest.raises(NotAGraphRun, match=f"^Run {info.run_id} is not a graph run$"):
            await graphs.view(info.run_id)
        with trio.fail_after(GUARD):
            with pytest.raises(NotAGraphRun) as raised:
                await graphs.wait(info.run_id)
        assert raised.value.run_id == info.run_id


async def test_unknown_runs_are_not_found(tmp_path: Path) -> None:
    async with open_graphs(tmp_path / "g.db") as graphs:
        with pytest.raises(UnknownRun, match="^Run R not found$"):
            await graphs.view("R")
        with pytest.raises(UnknownRun, match="^Run R not found$"):
            await graphs.wait("R")


# --- across a restart --------------------------------------------------------------------------


async def test_a_graph_and_its_runs_survive_reopening_store_and_runtime(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    async with open_graphs(path) as graphs:
        graph = await graphs.create(LOOP)
        first = await graphs.start(graph.graph_id, {"total": 0})
        with trio.fail_after(GUARD):
            before = await graphs.wait(first.run_id)

    async with open_graphs(path) as graphs:
        again = await graphs.get(graph.graph_id)
        assert (again.name, again.start, list(again.nodes)) == (
            "counter",
            "start",
            ["start", "count", "check"],
        )
        assert again.nodes["start"].params == {"amount": 10}
        assert await graphs.definition(graph.graph_id) == LOOP | {
            "nodes": {name: {"params": {}, **node} for name, node in LOOP["nodes"].items()}
        }
        assert await graphs.view(first.run_id) == before
        second = await graphs.start(graph.graph_id, {"total": 5})
        with trio.fail_after(GUARD):
            after = await graphs.wait(second.run_id)
        assert await graphs.view(second.run_id) == after
    assert after.status is GraphStatus.COMPLETED
    assert after.state == {"total": 15, "count": 3}


async def test_a_run_cut_short_by_shutdown_views_as_cancelled_after_reopening(
    tmp_path: Path,
) -> None:
    path = tmp_path / "g.db"
    gate = Gate()
    async with open_graphs(path, make_tools(gate)) as graphs:
        graph = await graphs.create(GATED)
        info = await graphs.start(graph.graph_id, {})
        with trio.fail_after(GUARD):
            await gate.reached.wait()
    async with open_graphs(path) as graphs:
        view = await graphs.view(info.run_id)
    assert view.status is GraphStatus.CANCELLED
    assert view.current_node == "wait"
    assert view.state == {"count": 1}
    assert view.error == "server shutting down"


async def test_a_graph_whose_tool_is_gone_can_no_longer_run(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    async with open_graphs(path) as graphs:
        graph = await graphs.create(LOOP)
        info = await graphs.start(graph.graph_id, {"total": 0})
        with trio.fail_after(GUARD):
            before = await graphs.wait(info.run_id)

    fewer = ToolRegistry()
    fewer.add(lambda state: None, name="noop")
    fewer.add(lambda state: None, name="inc")
    async with open_graphs(path, fewer) as graphs:
        with pytest.raises(InvalidGraph) as raised:
            await graphs.get(graph.graph_id)
        assert str(raised.value) == (
            f"graph {graph.graph_id} can no longer run: nodes.start.function: unknown tool"
            " 'add' (registered tools: inc, noop)"
        )
        with pytest.raises(InvalidGraph, match="can no longer run"):
            await graphs.start(graph.graph_id, {"total": 0})
        assert [r.info.run_id for r in await graphs.runtime.list_runs()] == [info.run_id]
        assert await graphs.view(info.run_id) == before  # its history is still readable
        assert (await graphs.definition(graph.graph_id))["name"] == "counter"
