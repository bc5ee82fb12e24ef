"""Graphs on the runtime: create and keep graph definitions, start graph runs, and view them.

A graph is validated against the tool registry when it is created and saved in the store, so its
id works after a restart (it is checked against the tools again when first used then). A graph
run is an ordinary run of the runtime whose workflow is the graph (`workflow_id` is the graph id)
and whose input (`message`) is the JSON text of its initial state; its view (status, current
node, state, execution log) is folded from its history, live or stored.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from actors.events import RunInfo
from actors.excerpt import excerpt
from actors.runtime import Runtime
from actors.store.base import GraphRecord, SaveGraph
from actors.workflows.graph import Graph, GraphDefinition, InvalidGraph, compile_graph
from actors.workflows.graph_run import DEFAULT_MAX_PASSES, GraphRun
from actors.workflows.graph_view import GraphRunView
from actors.workflows.tools import ToolRegistry


class UnknownGraph(LookupError):
    def __init__(self, graph_id: str) -> None:
        super().__init__(f"Graph {excerpt(graph_id)} not found")
        self.graph_id = graph_id


class NotAGraphRun(LookupError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"Run {run_id} is not a graph run")
        self.run_id = run_id


class Graphs:
    """`max_passes` bounds the node passes of each run, over all its nodes, and so the
    `max_iterations` a run may ask for (see `actors.workflows.graph_run`)."""

    def __init__(
        self, runtime: Runtime, tools: ToolRegistry, *, max_passes: int = DEFAULT_MAX_PASSES
    ) -> None:
        self.runtime = runtime
        self.tools = tools
        self.max_passes = max_passes
        self._compiled: dict[str, Graph] = {}

    async def create(self, data: Any) -> Graph:
        """Validate a definition (decoded JSON) and save it; raises InvalidGraph."""
        definition = GraphDefinition.from_json(data)
        graph = compile_graph(str(uuid.uuid4()), definition, self.tools)
        text = orjson.dumps(definition.to_json()).decode()
        record = GraphRecord(graph.graph_id, graph.name, text, time.time())
        await self.runtime.store.commit([SaveGraph(record)])
        self._compiled[graph.graph_id] = graph
        return graph

    async def definition(self, graph_id: str) -> dict[str, Any]:
        """The definition as created; raises UnknownGraph."""
        record = await self._record(graph_id)
        definition: dict[str, Any] = orjson.loads(record.definition)
        return definition

    async def get(self, graph_id: str) -> Graph:
        """The graph ready to run; raises UnknownGraph, or InvalidGraph when a tool it uses is
        no longer registered."""
        graph = self._compiled.get(graph_id)
        if graph is None:
            record = await self._record(graph_id)
            definition = GraphDefinition.from_json(orjson.loads(record.definition))
            try:
                graph = compile_graph(graph_id, definition, self.tools)
            except InvalidGraph as error:
                raise InvalidGraph(f"graph {graph_id} can no longer run: {error}") from None
            self._compiled[graph_id] = graph
        return graph

    async def _record(self, graph_id: str) -> GraphRecord:
        record = await self.runtime.store.get_graph(graph_id)
        if record is None:
            raise UnknownGraph(graph_id)
        return record

    async def start(self, graph_id: str, initial_state: dict[str, Any]) -> RunInfo:
        """Start a run; raises UnknownGraph, InvalidGraph, InvalidInitialState, RuntimeClosing."""
        run = GraphRun.of(await self.get(graph_id), initial_state, self.max_passes)
        return await self.runtime.start_workflow(run, orjson.dumps(initial_state).decode())

    async def view(self, run_id: str) -> GraphRunView:
        """The run as it is now; raises UnknownRun, NotAGraphRun."""
        record, frames = await self.runtime.history(run_id)
        return GraphRunView.of(run_id, await self._initial_state(record.info), frames)

    async def wait(self, run_id: str) -> GraphRunView:
        """Follow the run to its end; raises UnknownRun, NotAGraphRun."""
        record = await self.runtime.get_run(run_id)
        view = GraphRunView(run_id, await self._initial_state(record.info))
        follow = await self.runtime.follow(run_id, 0)

        async def apply(frame: str) -> None:
            view.apply(orjson.loads(frame))

        await follow.stream(apply)
        return view

    async def _initial_state(self, info: RunInfo) -> dict[str, Any]:
        if info.workflow_id not in self._compiled and not await self._exists(info.workflow_id):
            raise NotAGraphRun(info.run_id)
        initial: dict[str, Any] = orjson.loads(info.message)
        return initial

    async def _exists(self, graph_id: str) -> bool:
        return await self.runtime.store.get_graph(graph_id) is not None
