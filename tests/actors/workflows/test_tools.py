"""actors/workflows/tools.py: registering tools (both decorator forms, names, descriptions,
duplicates), looking them up, checking node params against a tool's signature, and calling a
tool: sync tools in a worker thread, async tools in the caller's task, the result as a state
update, and the deep copy that keeps the caller's state out of the tool's reach."""

from __future__ import annotations

import functools

import threading
from typing import Any

import pytest
import trio

from actors.workflows.tools import Tool, ToolRegistry, ToolResultError, UnknownTool

# --- registering ---------------------------------------------------------------------------------


def test_bare_decorator_registers_under_the_function_name_and_returns_it_unchanged() -> None:
    tools = ToolRegistry()

    def count_words(state: dict[str, Any]) -> dict[str, Any]:
        """Count the words of `text`.

        The rest of the docstring is not the description."""
        return {"words": len(state["text"].split())}

    decorated = tools.tool(count_words)

    assert decorated is count_words
    tool = tools.get("count_words")
    assert tool.fn is count_words
    assert tool.description == "Count the words of `text`."
    assert tool.params == ()
    assert not tool.any_params
    assert "count_words" in tools and len(tools) == 1


def test_decorator_with_name_and_description() -> None:
    tools = ToolRegistry()

    @tools.tool(name="shout", description="Upper-cases the text")
    def upper(state: dict[str, Any]) -> dict[str, Any]:
        """Not this."""
        return {"text": state["text"].upper()}

    assert "upper" not in tools
    tool = tools.get("shout")
    assert (tool.name, tool.description, tool.fn) == ("shout", "Upper-cases the text", upper)
    assert tool.describe() == {"name": "shout", "description": "Upper-cases the text", "params": []}


def test_decorator_with_only_a_name_keeps_the_docstring_description() -> None:
    tools = ToolRegistry()

    @tools.tool(name="renamed")
    def original(state: dict[str, Any]) -> None:
        """First line.
        Second line."""

    assert tools.get("renamed").description == "First line."


def test_an_explicit_empty_description_wins_over_the_docstring() -> None:
    tools = ToolRegistry()

    @tools.tool(description="")
    def documented(state: dict[str, Any]) -> None:
        """A docstring."""

    assert tools.get("documented").description == ""


def test_a_tool_without_a_docstring_has_an_empty_description() -> None:
    tools = ToolRegistry()
    tools.add(lambda state: None, name="anonymous")
    assert tools.get("anonymous").description == ""


def test_registering_a_name_twice_is_refused_and_keeps_the_first() -> None:
    tools = ToolRegistry()

    @tools.tool
    def step(state: dict[str, Any]) -> None:
        pass

    def other(state: dict[str, Any]) -> None:
        pass

    with pytest.raises(ValueError, match="a tool named 'step' is already registered"):
        tools.add(other, name="step")
    with pytest.raises(ValueError, match="'step' is already registered"):
        tools.tool(name="step")(other)
    assert tools.get("step").fn is step
    assert len(tools) == 1


def test_a_function_that_does_not_take_the_state_first_is_refused() -> None:
    tools = ToolRegistry()

    def no_arguments() -> None:
        pass

    def keyword_only(*, state: dict[str, Any]) -> None:
        pass

    for fn in (no_arguments, keyword_only):
        with pytest.raises(TypeError, match=f"tool {fn.__name__} must take the state"):
            tools.add(fn)
    assert len(tools) == 0


def test_params_are_the_keyword_parameters_after_the_state() -> None:
    def tool(state: dict[str, Any], limit: int = 3, /, *, mode: str = "a") -> None:
        pass

    def keywords(state: dict[str, Any], limit: int = 3, *, mode: str = "a", **rest: Any) -> None:
        pass

    positional_only = Tool.of(tool)
    assert positional_only.params == ("mode",)  # `limit` cannot be passed by name
    assert not positional_only.any_params
    with_kwargs = Tool.of(keywords)
    assert with_kwargs.params == ("limit", "mode")
    assert with_kwargs.any_params


# --- looking up ----------------------------------------------------------------------------------


def test_unknown_tool_names_the_tool_and_the_registered_ones() -> None:
    tools = ToolRegistry()
    with pytest.raises(UnknownTool, match=r"^unknown tool 'x' \(registered tools: none\)$"):
        tools.get("x")

    for name in ("zeta", "alpha", "mid"):
        tools.add(lambda state: None, name=name)
    with pytest.raises(UnknownTool) as raised:
        tools.get("nope")
    assert str(raised.value) == "unknown tool 'nope' (registered tools: alpha, mid, zeta)"
    assert raised.value.name == "nope"
    assert isinstance(raised.value, LookupError)


def test_iterating_gives_the_tools_in_registration_order() -> None:
    tools = ToolRegistry()
    for name in ("b", "a", "c"):
        tools.add(lambda state: None, name=name)
    assert [tool.name for tool in tools] == ["b", "a", "c"]
    assert 42 not in tools


# --- params ----------------------------------------------------------------------------------


def test_params_problem_names_the_unknown_params_and_the_accepted_ones() -> None:
    def scale(state: dict[str, Any], factor: float = 1.0, offset: float = 0.0) -> None:
        pass

    tool = Tool.of(scale)
    assert tool.params_problem({}) is None
    assert tool.params_problem({"factor": 2}) is None
    assert tool.params_problem({"factor": 2, "offset": 1}) is None
    assert tool.params_problem({"zoom": 2, "factor": 1, "angle": 3}) == (
        "tool scale takes no parameter angle, zoom (it takes: factor, offset)"
    )


def test_params_problem_of_a_tool_without_params_says_it_takes_none() -> None:
    tool = Tool.of(lambda state: None, name="bare")
    assert tool.params_problem({"x": 1}) == "tool bare takes no parameter x (it takes: none)"


def test_a_tool_with_kwargs_accepts_any_params() -> None:
    def anything(state: dict[str, Any], **options: Any) -> None:
        pass

    tool = Tool.of(anything)
    assert tool.params == ()
    assert tool.params_problem({"whatever": 1, "else": [2]}) is None


# --- calling ---------------------------------------------------------------------------------


async def test_a_sync_tool_runs_in_a_worker_thread_with_its_params() -> None:
    threads: list[threading.Thread] = []

    def scale(state: dict[str, Any], factor: int = 1) -> dict[str, Any]:
        threads.append(threading.current_thread())
        return {"value": state["value"] * factor}

    with trio.fail_after(10):
        update = await Tool.of(scale).call({"value": 7}, {"factor": 3})
    assert update == {"value": 21}
    assert len(threads) == 1 and threads[0] is not threading.current_thread()


async def test_an_async_tool_runs_in_the_calling_thread() -> None:
    threads: list[threading.Thread] = []

    async def fetch(state: dict[str, Any], *, suffix: str) -> dict[str, Any]:
        threads.append(threading.current_thread())
        await trio.lowlevel.checkpoint()
        return {"text": state["text"] + suffix}

    with trio.fail_after(10):
        update = await Tool.of(fetch).call({"text": "a"}, {"suffix": "b"})
    assert update == {"text": "ab"}
    assert threads == [threading.current_thread()]


async def test_a_tool_returning_none_gives_an_empty_update() -> None:
    async def quiet(state: dict[str, Any]) -> None:
        await trio.lowlevel.checkpoint()

    assert await Tool.of(lambda state: None, name="sync_quiet").call({"a": 1}, {}) == {}
    assert await Tool.of(quiet).call({"a": 1}, {}) == {}


@pytest.mark.parametrize(
    ("result", "type_name"),
    [([("a", 1)], "list"), ("done", "str"), (3, "int"), ({1: "x"}, "dict"), ({("a",): 1}, "dict")],
)
async def test_a_result_that_is_not_a_dict_with_string_keys_is_refused(
    result: object, type_name: str
) -> None:
    tool = Tool.of(lambda state: result, name="odd")
    with pytest.raises(ToolResultError) as raised:
        await tool.call({}, {})
    assert str(raised.value) == (
        f"tool odd returned {type_name}, expected a dict of state updates with string keys"
        " (or None)"
    )


async def test_an_exception_of_the_tool_propagates_unchanged() -> None:
    def broken(state: dict[str, Any]) -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        await Tool.of(broken).call({}, {})


async def test_the_tool_gets_a_deep_copy_of_the_state() -> None:
    """Whatever a tool does to its argument (top level or nested) leaves the caller's state as
    it was; only the returned update carries changes."""
    seen: list[dict[str, Any]] = []

    def vandal(state: dict[str, Any]) -> dict[str, Any]:
        seen.append(state)
        state["items"].append("added")
        state["nested"]["deep"]["n"] = 99
        state["new"] = True
        del state["gone"]
        return {"items": state["items"]}

    async def async_vandal(state: dict[str, Any]) -> None:
        state["items"].clear()
        state["nested"].clear()

    state = {"items": ["a"], "nested": {"deep": {"n": 1}}, "gone": 1}
    update = await Tool.of(vandal).call(state, {})
    await Tool.of(async_vandal).call(state, {})

    assert state == {"items": ["a"], "nested": {"deep": {"n": 1}}, "gone": 1}
    assert update == {"items": ["a", "added"]}
    assert seen[0] is not state
    assert update["items"] is not state["items"]


# --- the signature check: required params, the state's own name ---------------------------------


def test_a_missing_required_param_is_a_params_problem() -> None:
    """A required keyword parameter the node does not give would fail every run at the node
    (`missing 1 required keyword-only argument`): it is refused when the graph is created."""

    def needs_limit(state: dict[str, Any], *, limit: int) -> None:
        pass

    tool = Tool.of(needs_limit)
    assert tool.params_problem({}) == "tool needs_limit needs the parameter limit"
    assert tool.params_problem({"limit": 3}) is None


def test_a_param_named_like_the_state_argument_is_a_params_problem() -> None:
    """Even a `**kwargs` tool cannot take a param named like its state parameter (the call
    would fail with `got multiple values for argument 'state'`)."""

    def anything(state: dict[str, Any], **options: Any) -> None:
        pass

    problem = Tool.of(anything).params_problem({"state": 1})
    assert problem is not None and "'state'" in problem


def test_a_tool_without_a_name_must_be_given_one() -> None:
    def scaled(state: dict[str, Any], factor: int) -> dict[str, Any]:
        return {"n": state["n"] * factor}

    with pytest.raises(TypeError, match="give it a name"):
        Tool.of(functools.partial(scaled, factor=2))
    assert Tool.of(functools.partial(scaled, factor=2), name="double").name == "double"


async def test_an_object_with_an_async_call_is_an_async_tool() -> None:
    class Counter:
        __name__ = "counter"

        async def __call__(self, state: dict[str, Any]) -> dict[str, Any]:
            await trio.lowlevel.checkpoint()
            return {"n": state["n"] + 1}

    tool = Tool.of(Counter())
    assert tool.is_async
    assert await tool.call({"n": 1}, {}) == {"n": 2}
