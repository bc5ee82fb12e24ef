"""The tool registry: Python functions that graph nodes are bound to, by name.

A tool is `def tool(state, **params) -> dict | None` (or `async def`). It gets its own deep copy
of the run's state, so whatever it does to that copy changes nothing; what it returns is the
state update the graph merges into the state and reports as the node's `state_update`. A node's
`params` from the graph definition are passed as keyword arguments, and are checked against the
tool's signature when the graph is created. Sync tools run in a worker thread, so a tool that
computes for a while does not stall the server.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, overload

import attrs
import trio

from actors.excerpt import excerpt

ToolFunction = Callable[..., Any]


class UnknownTool(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        names = ", ".join(known) or "none"
        super().__init__(f"unknown tool {name!r} (registered tools: {names})")
        self.name = name


class ToolResultError(TypeError):
    """A tool returned something other than a dict of state updates."""


@attrs.frozen
class Tool:
    name: str
    fn: ToolFunction
    description: str
    state_arg: str  # the name of its first parameter, which no param may take
    params: tuple[str, ...]  # the keyword parameters it takes after the state
    required: tuple[str, ...]  # those of `params` without a default
    any_params: bool  # it takes **kwargs
    is_async: bool

    @classmethod
    def of(cls, fn: ToolFunction, name: str | None = None, description: str | None = None) -> Tool:
        name = name or getattr(fn, "__name__", None)
        if not name:
            raise TypeError(f"tool {fn!r} has no __name__: give it a name")
        parameters = list(inspect.signature(fn).parameters.values())
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if not parameters or parameters[0].kind not in positional:
            raise TypeError(f"tool {name} must take the state as its first argument")
        keywords = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        named = [p for p in parameters[1:] if p.kind in keywords]
        doc = inspect.getdoc(fn) or ""
        return cls(
            name=name,
            fn=fn,
            description=description if description is not None else doc.split("\n", 1)[0],
            state_arg=parameters[0].name,
            params=tuple(p.name for p in named),
            required=tuple(p.name for p in named if p.default is inspect.Parameter.empty),
            any_params=any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters),
            is_async=inspect.iscoroutinefunction(fn)
            or inspect.iscoroutinefunction(type(fn).__call__),
        )

    def params_problem(self, params: Mapping[str, Any]) -> str | None:
        """Why `params` cannot be passed to this tool, or None if they can."""
        accepted = ", ".join(self.params) or "none"
        if self.state_arg in params:
            return f"tool {self.name} takes the state as {self.state_arg!r}; no param may be named so"
        missing = [name for name in self.required if name not in params]
        if missing:
            return f"tool {self.name} needs the parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
        unknown = sorted(set(params) - set(self.params))
        if unknown and not self.any_params:
            return (
                f"tool {self.name} takes no parameter {excerpt(', '.join(unknown))}"
                f" (it takes: {accepted})"
            )
        return None

    async def call(self, state: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        """Run the tool on a copy of `state`; return its state update."""
        own_state = copy.deepcopy(dict(state))
        if self.is_async:
            result = await self.fn(own_state, **params)
        else:
            result = await trio.to_thread.run_sync(
                lambda: self.fn(own_state, **params), abandon_on_cancel=True
            )
        if result is None:
            return {}
        if not isinstance(result, dict) or not all(isinstance(k, str) for k in result):
            raise ToolResultError(
                f"tool {self.name} returned {type(result).__name__}, expected a dict of state"
                " updates with string keys (or None)"
            )
        return result

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "params": list(self.params)}


class ToolRegistry:
    """Tools by name. Registering a name twice is an error, not a silent replacement."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def add(self, fn: ToolFunction, name: str | None = None, description: str | None = None) -> Tool:
        tool = Tool.of(fn, name, description)
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    @overload
    def tool(self, fn: ToolFunction) -> ToolFunction: ...

    @overload
    def tool(
        self, *, name: str | None = None, description: str | None = None
    ) -> Callable[[ToolFunction], ToolFunction]: ...

    def tool(
        self,
        fn: ToolFunction | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> ToolFunction | Callable[[ToolFunction], ToolFunction]:
        """Register a function as a tool: `@tools.tool` or `@tools.tool(name="x")`; the function
        itself is returned unchanged."""

        def register(function: ToolFunction) -> ToolFunction:
            self.add(function, name, description)
            return function

        return register if fn is None else register(fn)

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownTool(name, sorted(self._tools)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)
