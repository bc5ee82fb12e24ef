"""Graph definitions: nodes bound to tools, plain and conditional edges, and the walk between them.

`GraphDefinition` is what a client sends to create a graph, built by the strict converter of
`actors.converter`. `compile_graph` checks it against the tool registry and the graph rules and
gives a `Graph` ready to run, or raises `InvalidGraph` naming the field or node at fault:
- at least one node; `END` is the reserved terminal node, not a node name;
- every node's tool is registered and accepts the node's `params`;
- every edge leaves from a node and leads to a node or `END`; every condition parses;
- the start node is the first node (in definition order) that no edge points to, or the first
  node when every node has one (a loop back to the first node).
`Graph.next_node` is the walk: a node's conditional edge wins over its plain edge, and a node
with no outgoing edge leads to `END`. It is pure, so loops and branches are tested without runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from actors.excerpt import excerpt
from actors.converter import InvalidDocument, converter, structure_strictly
from actors.workflows.conditions import Condition, ConditionSyntaxError, parse_condition
from actors.workflows.tools import Tool, ToolRegistry

END = "END"


class InvalidGraph(ValueError):
    """A graph definition that cannot be run; the message names the field or node at fault."""


@attrs.frozen
class NodeDefinition:
    function: str
    params: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class ConditionalEdge:
    condition: str
    true: str
    false: str


@attrs.frozen
class GraphDefinition:
    name: str
    nodes: dict[str, NodeDefinition]
    edges: dict[str, str] = attrs.Factory(dict)
    conditional_edges: dict[str, ConditionalEdge] = attrs.Factory(dict)

    @classmethod
    def from_json(cls, data: Any) -> GraphDefinition:
        """Build from decoded JSON; raises InvalidGraph naming every field that is wrong."""
        try:
            definition: GraphDefinition = structure_strictly(data, cls, "graph")
        except InvalidDocument as invalid:
            raise InvalidGraph(str(invalid)) from None
        return definition

    def to_json(self) -> dict[str, Any]:
        unstructured: dict[str, Any] = converter.unstructure(self)
        return unstructured


@attrs.frozen
class Node:
    name: str
    tool: Tool
    params: Mapping[str, Any]
    position: int  # in the definition: a node's `step_index`


@attrs.frozen
class Branch:
    condition: Condition
    true: str
    false: str


class WalkError(ValueError):
    """The walk cannot go on from a node: its condition could not be evaluated."""


@attrs.frozen
class Graph:
    graph_id: str
    name: str
    nodes: Mapping[str, Node]
    edges: Mapping[str, str]
    branches: Mapping[str, Branch]
    start: str

    def next_node(self, node: str, state: Mapping[str, Any]) -> str:
        """Where the walk goes after `node` with `state`; raises WalkError."""
        branch = self.branches.get(node)
        if branch is not None:
            try:
                outcome = branch.condition.evaluate(state)
            except ValueError as error:
                raise WalkError(f"the condition of node {node} failed: {error}") from None
            return branch.true if outcome else branch.false
        return self.edges.get(node, END)


def compile_graph(graph_id: str, definition: GraphDefinition, tools: ToolRegistry) -> Graph:
    """Check `definition` against `tools` and the graph rules; raises InvalidGraph."""
    if not definition.nodes:
        raise InvalidGraph("nodes: a graph needs at least one node")
    if END in definition.nodes:
        raise InvalidGraph(f"nodes.{END}: {END} is the reserved terminal node, not a node name")
    nodes = {
        name: _node(name, position, spec, tools)
        for position, (name, spec) in enumerate(definition.nodes.items())
    }
    for source, target in definition.edges.items():
        _check_edge(f"edges.{excerpt(source)}", source, target, nodes)
    branches = {}
    for source, edge in definition.conditional_edges.items():
        where = f"conditional_edges.{excerpt(source)}"
        if source not in nodes:
            raise InvalidGraph(f"{where}: {excerpt(source)!r} is not a node of this graph")
        _check_edge(f"{where}.true", source, edge.true, nodes)
        _check_edge(f"{where}.false", source, edge.false, nodes)
        try:
            condition = parse_condition(edge.condition)
        except ConditionSyntaxError as error:
            raise InvalidGraph(f"{where}.condition: {error}") from None
        branches[source] = Branch(condition, edge.true, edge.false)
    targets = set(definition.edges.values())
    targets.update(t for e in definition.conditional_edges.values() for t in (e.true, e.false))
    start = next((name for name in nodes if name not in targets), next(iter(nodes)))
    return Graph(graph_id, definition.name, nodes, dict(definition.edges), branches, start)


def _node(name: str, position: int, spec: NodeDefinition, tools: ToolRegistry) -> Node:
    if not name:
        raise InvalidGraph("nodes: a node name cannot be empty")
    if spec.function not in tools:
        known = ", ".join(sorted(t.name for t in tools)) or "none"
        raise InvalidGraph(
            f"nodes.{excerpt(name)}.function: unknown tool {excerpt(spec.function)!r}"
            f" (registered tools: {known})"
        )
    tool = tools.get(spec.function)
    problem = tool.params_problem(spec.params)
    if problem is not None:
        raise InvalidGraph(f"nodes.{excerpt(name)}.params: {problem}")
    return Node(name, tool, spec.params, position)


def _check_edge(where: str, source: str, target: str, nodes: Mapping[str, Node]) -> None:
    if source not in nodes:
        raise InvalidGraph(f"{where}: {excerpt(source)!r} is not a node of this graph")
    if target != END and target not in nodes:
        raise InvalidGraph(
            f"{where}: target {excerpt(target)!r} is not a node of this graph (nodes: "
            f"{excerpt(', '.join(nodes))}; or {END})"
        )
