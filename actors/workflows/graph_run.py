"""One run of a graph: the body a run actor executes, walking the graph from its start node.

`GraphRun` implements `WorkflowDefinition`, so a graph run is a run like any other (durable
history, followers, cancellation, recovery). Per node pass it emits, in Agno's step shape with
the graph's own fields added:
- `StepStarted` (`step_name` = `node`, `iteration` = that node's pass number),
- `StepCompleted` (`state_update`, `function`, `duration_ms`) or `StepError` (`error`),
- `GraphTransition` (`from`, `to`), `to` being `END` after the last node;
and `GraphLimitReached` when a node would run more than `max_iterations` times: the run then
completes with the state it has. A failing tool, a tool result that is not JSON, a condition
that cannot be evaluated, or a run that would make more than `max_passes` node passes over all
its nodes (the server's bound on the work of one run, `--graph-max-iterations`) ends the run with
`WorkflowError`. Every graph event carries a timezone-aware ISO 8601 `timestamp`. The run's
`WorkflowCompleted` carries `final_state`.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import attrs
import orjson

from actors.events import (
    GRAPH_LIMIT_REACHED,
    GRAPH_TRANSITION,
    STEP_COMPLETED,
    STEP_ERROR,
    STEP_STARTED,
    RunInfo,
)
from actors.excerpt import excerpt
from actors.converter import json_integer
from actors.workflows.catalog import Emit, WorkflowFailed
from actors.workflows.graph import END, Graph, Node, WalkError
from actors.workflows.tools import ToolResultError

DEFAULT_MAX_ITERATIONS = 10
DEFAULT_MAX_PASSES = 1000  # node passes per run, over all its nodes: `--graph-max-iterations`
LIMIT_MESSAGE = "Max iterations reached"


class InvalidInitialState(ValueError):
    """An initial state a graph run cannot start from; the message names the key."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def max_iterations_of(initial_state: dict[str, Any], max_passes: int = DEFAULT_MAX_PASSES) -> int:
    """The bound on passes of any one node: `max_iterations` of the state, default 10 (or
    `max_passes` when that is lower); a value above `max_passes` is refused, an integer beyond
    64 bits (which orjson decodes as a float) too."""
    value = initial_state.get("max_iterations", min(DEFAULT_MAX_ITERATIONS, max_passes))
    number = json_integer(value)
    if number is None or number < 1:
        raise InvalidInitialState(
            f"initial_state.max_iterations must be a positive integer, got {excerpt(repr(value))}"
        )
    if number > max_passes:
        raise InvalidInitialState(
            f"initial_state.max_iterations must be at most {max_passes} (the server's"
            f" --graph-max-iterations), got {value}"
        )
    return number


@attrs.frozen
class GraphRun:
    graph: Graph
    initial_state: dict[str, Any]
    max_iterations: int
    max_passes: int

    @classmethod
    def of(
        cls, graph: Graph, initial_state: dict[str, Any], max_passes: int = DEFAULT_MAX_PASSES
    ) -> GraphRun:
        """Raises InvalidInitialState."""
        try:
            as_recorded = orjson.loads(orjson.dumps(initial_state))
        except TypeError as error:
            raise InvalidInitialState(f"initial_state is not JSON: {error}") from None
        return cls(graph, as_recorded, max_iterations_of(as_recorded, max_passes), max_passes)

    @property
    def id(self) -> str:
        return self.graph.graph_id

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def description(self) -> str:
        return f"graph {self.graph.name}"

    async def execute(self, run: RunInfo, emit: Emit) -> dict[str, Any]:
        state = copy.deepcopy(self.initial_state)
        passes: Counter[str] = Counter()
        current = self.graph.start
        while current != END:
            if passes[current] >= self.max_iterations:
                await emit(
                    GRAPH_LIMIT_REACHED,
                    {
                        "node": current,
                        "message": LIMIT_MESSAGE,
                        "max_iterations": self.max_iterations,
                        "timestamp": now_iso(),
                    },
                )
                break
            if passes.total() >= self.max_passes:
                raise WorkflowFailed(
                    f"the run reached {self.max_passes} node passes, the server's limit per run"
                    f" (--graph-max-iterations), before node {current} could run"
                )
            passes[current] += 1
            node = self.graph.nodes[current]
            state.update(await self._pass(node, passes[current], state, emit))
            try:
                following = self.graph.next_node(current, state)
            except WalkError as error:
                raise WorkflowFailed(str(error)) from None
            await emit(
                GRAPH_TRANSITION, {"from": current, "to": following, "timestamp": now_iso()}
            )
            current = following
        return {"final_state": state, "timestamp": now_iso()}

    async def _pass(
        self, node: Node, iteration: int, state: dict[str, Any], emit: Emit
    ) -> dict[str, Any]:
        """One pass of `node`: its events, and the state update of its tool."""
        where = {
            "step_name": node.name,
            "step_index": node.position,
            "step_id": str(uuid.uuid4()),
            "node": node.name,
            "iteration": iteration,
        }
        await emit(STEP_STARTED, {**where, "timestamp": now_iso()})
        started = time.perf_counter()
        try:
            update = _as_recorded(await node.tool.call(state, node.params), node)
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            await emit(
                STEP_ERROR,
                {
                    **where,
                    "error": message,
                    "function": node.tool.name,
                    "duration_ms": _ms_since(started),
                    "timestamp": now_iso(),
                },
            )
            raise WorkflowFailed(f"node {node.name} ({node.tool.name}) failed: {message}") from None
        await emit(
            STEP_COMPLETED,
            {
                **where,
                "state_update": update,
                "function": node.tool.name,
                "duration_ms": _ms_since(started),
                "timestamp": now_iso(),
            },
        )
        return update


def _as_recorded(update: dict[str, Any], node: Node) -> dict[str, Any]:
    """The update as its event records it (a datetime becomes its ISO text, a tuple a list): the
    state a run goes on with is exactly what its history replays."""
    try:
        recorded: dict[str, Any] = orjson.loads(orjson.dumps(update))
    except TypeError as error:
        raise ToolResultError(
            f"tool {node.tool.name} returned a state update that is not JSON: {error}"
        ) from None
    return recorded


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
