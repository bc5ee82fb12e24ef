"""actors/workflows/graph.py: building a `GraphDefinition` from JSON (every wrong field named by
its path), `compile_graph` (its refusals name the field or node at fault; the start node rule),
and the pure walk `Graph.next_node` (conditional edge over plain edge, END when nothing leads
on, a condition that cannot be evaluated), with a property test of the walk on random graphs
against a reference model built from the definition alone."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.workflows.graph import (
    END,
    ConditionalEdge,
    GraphDefinition,
    InvalidGraph,
    NodeDefinition,
    WalkError,
    compile_graph,
)
from actors.workflows.tools import ToolRegistry


def registry() -> ToolRegistry:
    tools = ToolRegistry()

    @tools.tool
    def inc(state: dict[str, Any]) -> dict[str, Any]:
        return {"count": state.get("count", 0) + 1}

    @tools.tool
    def scale(state: dict[str, Any], factor: int = 2) -> dict[str, Any]:
        return {"count": state["count"] * factor}

    @tools.tool
    def anything(state: dict[str, Any], **options: Any) -> None:
        pass

    return tools


TOOLS = registry()


def definition(data: dict[str, Any]) -> GraphDefinition:
    return GraphDefinition.from_json({"name": "g", **data})


def refusal(data: dict[str, Any], tools: ToolRegistry = TOOLS) -> str:
    """The message of the InvalidGraph that compiling `data` raises."""
    with pytest.raises(InvalidGraph) as raised:
        compile_graph("gid", definition(data), tools)
    return str(raised.value)


def nodes(*names: str, function: str = "inc") -> dict[str, Any]:
    return {name: {"function": function} for name in names}


# --- GraphDefinition.from_json -----------------------------------------------------------------


def test_from_json_builds_the_definition_with_defaults() -> None:
    built = GraphDefinition.from_json(
        {
            "name": "review",
            "nodes": {
                "a": {"function": "inc"},
                "b": {"function": "scale", "params": {"factor": 3}},
            },
            "edges": {"a": "b"},
            "conditional_edges": {"b": {"condition": "count > 3", "true": "END", "false": "a"}},
        }
    )
    assert built == GraphDefinition(
        "review",
        {"a": NodeDefinition("inc"), "b": NodeDefinition("scale", {"factor": 3})},
        {"a": "b"},
        {"b": ConditionalEdge("count > 3", "END", "a")},
    )
    minimal = GraphDefinition.from_json({"name": "m", "nodes": {"a": {"function": "inc"}}})
    assert (minimal.edges, minimal.conditional_edges, minimal.nodes["a"].params) == ({}, {}, {})


def test_to_json_round_trips() -> None:
    data = {
        "name": "round",
        "nodes": {"a": {"function": "inc", "params": {"x": [1, {"y": None}]}}},
        "edges": {},
        "conditional_edges": {"a": {"condition": "count < 2", "true": "a", "false": "END"}},
    }
    built = GraphDefinition.from_json(data)
    assert built.to_json() == data
    assert GraphDefinition.from_json(built.to_json()) == built


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "g", "nodes": nodes("a"), "conditional_edges": None},
            "conditional_edges must be an object, got null",
        ),
        ({"name": "g", "nodes": nodes("a"), "edges": None}, "edges must be an object, got null"),
        ({"name": "g", "nodes": None}, "nodes must be an object, got null"),
        ({"name": "g", "nodes": []}, "nodes must be an object, got array"),
        ({"name": "g", "nodes": {"a": "inc"}}, "nodes.a must be an object, got string"),
        (
            {"name": "g", "nodes": {"a": {"function": 1}}},
            "nodes.a.function must be a string, got integer",
        ),
        (
            {"name": "g", "nodes": {"a": {"function": "inc", "params": []}}},
            "nodes.a.params must be an object, got array",
        ),
        ({"name": 5, "nodes": nodes("a")}, "name must be a string, got integer"),
        (
            {"name": "g", "nodes": nodes("a"), "edges": {"a": 3}},
            "edges.a must be a string, got integer",
        ),
        (
            {"name": "g", "nodes": nodes("a"), "conditional_edges": {"a": None}},
            "conditional_edges.a must be an object, got null",
        ),
        (
            {
                "name": "g",
                "nodes": nodes("a"),
                "conditional_edges": {"a": {"condition": "count > 1", "true": "END"}},
            },
            "conditional_edges.a.false is required",
        ),
        (
            {
                "name": "g",
                "nodes": nodes("a"),
                "conditional_edges": {"a": {"condition": True, "true": "END", "false": "a"}},
            },
            "conditional_edges.a.condition must be a string, got boolean",
        ),
        ({"nodes": nodes("a")}, "name is required"),
        ({"name": "g"}, "nodes is required"),
        ({"name": "g", "nodes": nodes("a"), "extra": 1}, "unknown field for graph: extra"),
        (
            {"name": "g", "nodes": {"a": {"function": "inc", "fn": "x"}}},
            "unknown field for nodes.a: fn",
        ),
        (
            {
                "name": "g",
                "nodes": nodes("a"),
                "conditional_edges": {
                    "a": {"condition": "count > 1", "true": "END", "false": "a", "else": "a"}
                },
            },
            "unknown field for conditional_edges.a: else",
        ),
    ],
)
def test_from_json_refuses_naming_the_path(data: Any, message: str) -> None:
    with pytest.raises(InvalidGraph) as raised:
        GraphDefinition.from_json(data)
    assert message in str(raised.value)


def test_from_json_names_every_wrong_field() -> None:
    with pytest.raises(InvalidGraph) as raised:
        GraphDefinition.from_json({"name": 1, "nodes": {"a": {"function": 2}}, "edges": []})
    message = str(raised.value)
    assert "name must be a string, got integer" in message
    assert "nodes.a.function must be a string, got integer" in message
    assert "edges must be an object, got array" in message


@pytest.mark.parametrize(("data", "kind"), [(None, "null"), ([], "array"), ("g", "string")])
def test_from_json_refuses_a_document_that_is_not_an_object(data: Any, kind: str) -> None:
    with pytest.raises(InvalidGraph, match=f"^graph must be a JSON object, got {kind}$"):
        GraphDefinition.from_json(data)


# --- compile_graph: refusals -------------------------------------------------------------------


def test_a_graph_needs_a_node() -> None:
    assert refusal({"nodes": {}}) == "nodes: a graph needs at least one node"


def test_end_is_not_a_node_name() -> None:
    message = refusal({"nodes": nodes("a", "END")})
    assert message == "nodes.END: END is the reserved terminal node, not a node name"


def test_an_empty_node_name_is_refused() -> None:
    assert refusal({"nodes": nodes("")}) == "nodes: a node name cannot be empty"


def test_an_unknown_tool_names_the_node_and_the_registered_tools() -> None:
    message = refusal({"nodes": {"a": {"function": "inc"}, "b": {"function": "nope"}}})
    assert message == (
        "nodes.b.function: unknown tool 'nope' (registered tools: anything, inc, scale)"
    )


def test_an_unknown_tool_with_no_tools_registered() -> None:
    assert "(registered tools: none)" in refusal({"nodes": nodes("a")}, ToolRegistry())


def test_params_the_tool_does_not_take_name_the_node() -> None:
    message = refusal({"nodes": {"s": {"function": "scale", "params": {"factr": 3}}}})
    assert message == "nodes.s.params: tool scale takes no parameter factr (it takes: factor)"


def test_params_the_tool_takes_are_kept_on_the_node() -> None:
    graph = compile_graph(
        "gid",
        definition(
            {
                "nodes": {
                    "s": {"function": "scale", "params": {"factor": 3}},
                    "k": {"function": "anything", "params": {"free": [1]}},
                }
            }
        ),
        TOOLS,
    )
    assert graph.nodes["s"].params == {"factor": 3}
    assert graph.nodes["k"].params == {"free": [1]}
    assert graph.nodes["s"].tool is TOOLS.get("scale")
    assert [graph.nodes[n].position for n in ("s", "k")] == [0, 1]


def test_an_edge_from_a_missing_node() -> None:
    message = refusal({"nodes": nodes("a"), "edges": {"ghost": "a"}})
    assert message == "edges.ghost: 'ghost' is not a node of this graph"


def test_an_edge_to_a_missing_node() -> None:
    message = refusal({"nodes": nodes("a", "b"), "edges": {"a": "c"}})
    assert message == "edges.a: target 'c' is not a node of this graph (nodes: a, b; or END)"


@pytest.mark.parametrize("branch", ["true", "false"])
def test_a_conditional_edge_to_a_missing_node(branch: str) -> None:
    edge = {"condition": "count > 1", "true": "END", "false": "a", branch: "zz"}
    message = refusal({"nodes": nodes("a"), "conditional_edges": {"a": edge}})
    assert message.startswith(f"conditional_edges.a.{branch}: target 'zz' is not a node")


def test_a_conditional_edge_from_a_missing_node() -> None:
    edge = {"condition": "count > 1", "true": "END", "false": "a"}
    message = refusal({"nodes": nodes("a"), "conditional_edges": {"ghost": edge}})
    assert message.startswith("conditional_edges.ghost")
    assert "'ghost' is not a node of this graph" in message


@pytest.mark.parametrize(
    ("condition", "detail"),
    [
        ("count >", "expected a value"),
        ("count = 3", "use '==' to compare"),
        ("", "is empty"),
        ("len(code) > 1", "function calls are not allowed"),
        ("__import__('os')", "function calls are not allowed"),
        ("state['x'] > 1", "subscripts are not supported"),
        ("count + 1 > 2", "arithmetic is not supported"),
    ],
)
def test_a_condition_that_does_not_parse_names_the_condition_field(
    condition: str, detail: str
) -> None:
    edge = {"condition": condition, "true": "END", "false": "b"}
    message = refusal({"nodes": nodes("a", "b"), "conditional_edges": {"b": edge}})
    assert message.startswith("conditional_edges.b.condition: ")
    assert detail in message


# --- compile_graph: the start node -------------------------------------------------------------


def test_the_start_node_is_the_first_node_no_edge_points_to() -> None:
    graph = compile_graph(
        "gid",
        definition(
            {
                "nodes": nodes("x", "y", "z"),
                "edges": {"y": "x", "x": "z"},
                "conditional_edges": {"z": {"condition": "count > 1", "true": END, "false": "x"}},
            }
        ),
        TOOLS,
    )
    assert graph.start == "y"


def test_a_conditional_target_counts_as_pointed_to() -> None:
    graph = compile_graph(
        "gid",
        definition(
            {
                "nodes": nodes("a", "b", "c"),
                "conditional_edges": {"c": {"condition": "count > 1", "true": "a", "false": END}},
            }
        ),
        TOOLS,
    )
    assert graph.start == "b"


def test_the_start_node_is_the_first_node_when_every_node_is_pointed_to() -> None:
    cycle = {"nodes": nodes("p", "q", "r"), "edges": {"r": "q", "q": "p", "p": "r"}}
    graph = compile_graph("gid", definition(cycle), TOOLS)
    assert graph.start == "p"


def test_a_single_node_graph_starts_there_and_ends_after_it() -> None:
    graph = compile_graph("gid", definition({"name": "solo", "nodes": nodes("only")}), TOOLS)
    assert (graph.graph_id, graph.name, graph.start) == ("gid", "solo", "only")
    assert graph.next_node("only", {}) == END


# --- next_node ---------------------------------------------------------------------------------


LOOP = {
    "nodes": nodes("a", "b"),
    "edges": {"a": "b", "b": "a"},
    "conditional_edges": {"b": {"condition": "count >= 3", "true": END, "false": "a"}},
}


def test_a_conditional_edge_wins_over_a_plain_edge() -> None:
    graph = compile_graph("gid", definition(LOOP), TOOLS)
    assert graph.next_node("a", {"count": 0}) == "b"
    assert graph.next_node("b", {"count": 5}) == END
    assert graph.next_node("b", {"count": 1}) == "a"


def test_a_node_with_no_outgoing_edge_leads_to_end() -> None:
    graph = compile_graph("gid", definition({"nodes": nodes("a", "b"), "edges": {"a": "b"}}), TOOLS)
    assert graph.next_node("b", {"anything": 1}) == END


def test_a_missing_key_in_a_condition_is_a_walk_error_naming_key_and_node() -> None:
    graph = compile_graph("gid", definition(LOOP), TOOLS)
    with pytest.raises(WalkError) as raised:
        graph.next_node("b", {"other": 1})
    message = str(raised.value)
    assert "node b" in message
    assert "'count'" in message


def test_incomparable_values_in_a_condition_are_a_walk_error() -> None:
    graph = compile_graph("gid", definition(LOOP), TOOLS)
    with pytest.raises(WalkError, match="the condition of node b failed: .*cannot compare"):
        graph.next_node("b", {"count": "three"})


def test_next_node_leaves_the_state_alone() -> None:
    graph = compile_graph("gid", definition(LOOP), TOOLS)
    state = {"count": 3, "nested": {"x": [1]}}
    graph.next_node("b", state)
    assert state == {"count": 3, "nested": {"x": [1]}}


# --- property: random graphs walk like the reference model -------------------------------------


@st.composite
def random_graphs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid definition over n0..n{k}: each node gets a plain edge, a conditional edge on the
    counter `count` (`count >= K` or `count < K`), both, or neither; targets include END."""
    names = [f"n{i}" for i in range(draw(st.integers(min_value=1, max_value=6)))]
    targets = st.sampled_from([*names, END])
    edges: dict[str, str] = {}
    conditional: dict[str, dict[str, str]] = {}
    for name in names:
        if draw(st.booleans()):
            edges[name] = draw(targets)
        if draw(st.booleans()):
            operator = draw(st.sampled_from([">=", "<"]))
            limit = draw(st.integers(min_value=0, max_value=8))
            conditional[name] = {
                "condition": f"count {operator} {limit}",
                "true": draw(targets),
                "false": draw(targets),
            }
    return {"nodes": nodes(*names), "edges": edges, "conditional_edges": conditional}


def reference_next(data: dict[str, Any], node: str, count: int) -> str:
    """Where the walk goes by the spec, from the definition alone."""
    edge = data["conditional_edges"].get(node)
    if edge is not None:
        _, operator, limit = edge["condition"].split()
        holds = count >= int(limit) if operator == ">=" else count < int(limit)
        return edge["true"] if holds else edge["false"]
    return data["edges"].get(node, END)


def reference_start(data: dict[str, Any]) -> str:
    pointed = set(data["edges"].values())
    pointed.update(t for e in data["conditional_edges"].values() for t in (e["true"], e["false"]))
    names = list(data["nodes"])
    return next((n for n in names if n not in pointed), names[0])


@settings(max_examples=150, deadline=None)
@given(data=random_graphs(), max_iterations=st.integers(min_value=1, max_value=4))
def test_random_graphs_compile_and_walk_as_the_reference_says(
    data: dict[str, Any], max_iterations: int
) -> None:
    """Each pass adds 1 to `count` (the `inc` tool); the walk follows `next_node` and stops at
    END or when a node would run more than `max_iterations` times, as the executor does. Every
    step matches the reference, so the walk always ends: within nodes x max_iterations passes."""
    graph = compile_graph("gid", definition(data), TOOLS)
    assert graph.start == reference_start(data)
    passes = {name: 0 for name in data["nodes"]}
    count, current = 0, graph.start
    while current != END and passes[current] < max_iterations:
        passes[current] += 1
        count += 1
        following = graph.next_node(current, {"count": count})
        assert following == reference_next(data, current, count)
        assert following == END or following in graph.nodes
        current = following
    assert max(passes.values()) <= max_iterations
    assert count <= len(data["nodes"]) * max_iterations
