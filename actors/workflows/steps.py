"""Sequential workflows: a list of steps run in order, each fed the previous step's content.

A step is a function of a `StepContext`, in any of four forms:
- `def f(ctx) -> content` runs in a worker thread, so blocking work does not stall the server;
- `async def f(ctx) -> content` may call `await ctx.progress(...)` to stream progress;
- a generator or async generator streams partial content: each yielded `str` is sent as a
  `StepProgress` and the step's content is their concatenation; a yielded `Progress` is a progress
  tick that adds nothing to the content.
Each step emits `StepStarted`, its `StepProgress` events, `StepOutput` and `StepCompleted`, in
Agno's shape. A step that raises emits `StepError` and ends the run with `WorkflowError`.
"""

from __future__ import annotations

import inspect
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import attrs
import trio

from actors.events import (
    STEP_COMPLETED,
    STEP_ERROR,
    STEP_OUTPUT,
    STEP_PROGRESS,
    STEP_STARTED,
    RunInfo,
)
from actors.workflows.catalog import Emit, WorkflowFailed

StepFunction = Callable[["StepContext"], Any]


@attrs.frozen
class Progress:
    """A progress tick a generator step may yield."""

    content: str | None = None
    data: dict[str, Any] | None = None


@attrs.define
class StepContext:
    run: RunInfo
    step_name: str
    step_index: int
    step_id: str
    previous_content: str | None
    _emit: Emit = attrs.field(repr=False)

    @property
    def input(self) -> str:
        """The message the run was started with."""
        return self.run.message

    async def progress(self, content: str | None = None, data: dict[str, Any] | None = None) -> None:
        await self._emit(
            STEP_PROGRESS,
            {
                "step_id": self.step_id,
                "step_name": self.step_name,
                "step_index": self.step_index,
                "attempt": 1,
                "content": content,
                "data": data,
            },
        )


@attrs.frozen
class Step:
    name: str
    fn: StepFunction
    description: str = ""

    @property
    def executor_name(self) -> str:
        return getattr(self.fn, "__name__", self.name)


def _as_step(item: Step | StepFunction) -> Step:
    return item if isinstance(item, Step) else Step(item.__name__, item)


def _steps(items: Iterable[Step | StepFunction]) -> tuple[Step, ...]:
    steps = tuple(_as_step(item) for item in items)
    if not steps:
        raise ValueError("a workflow needs at least one step")
    names = [s.name for s in steps]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"step names must be unique; repeated: {', '.join(duplicates)}")
    return steps


@attrs.frozen
class Workflow:
    """A sequential workflow: `Workflow("my-flow", "My Flow", [fetch, summarise])`."""

    id: str
    name: str
    steps: tuple[Step, ...] = attrs.field(converter=_steps)
    description: str = ""

    async def execute(self, run: RunInfo, emit: Emit) -> dict[str, Any]:
        started = time.monotonic()
        content: str | None = None
        results: list[dict[str, Any]] = []
        for index, step in enumerate(self.steps):
            result = await _run_step(step, index, run, content, emit)
            results.append(result)
            content = result["content"]
        return {
            "content": content,
            "content_type": "str",
            "metadata": {},
            "metrics": {"steps": {}, "duration": time.monotonic() - started},
            "step_results": results,
        }


def _step_result(step: Step, step_id: str, content: str) -> dict[str, Any]:
    return {
        "content": content,
        "step_name": step.name,
        "step_id": step_id,
        "step_type": "Step",
        "executor_type": "function",
        "executor_name": step.executor_name,
        "step_run_id": None,
        "images": None,
        "videos": None,
        "audio": None,
        "files": None,
        "metrics": None,
        "success": True,
        "error": None,
        "stop": False,
        "is_paused": False,
    }


async def _run_step(
    step: Step, index: int, run: RunInfo, previous: str | None, emit: Emit
) -> dict[str, Any]:
    step_id = str(uuid.uuid4())
    where = {"step_id": step_id, "step_name": step.name, "step_index": index}
    await emit(STEP_STARTED, where)
    ctx = StepContext(run, step.name, index, step_id, previous, emit)
    try:
        content = await _call(step.fn, ctx)
    except Exception as error:
        message = str(error) or type(error).__name__
        await emit(STEP_ERROR, {**where, "error": message})
        raise WorkflowFailed(message) from error
    result = _step_result(step, step_id, content)
    await emit(
        STEP_OUTPUT, {"step_name": step.name, "step_index": index, "step_output": result}
    )
    await emit(
        STEP_COMPLETED,
        {**where, "content": content, "content_type": "str", "step_response": result},
    )
    return result


async def _call(fn: StepFunction, ctx: StepContext) -> str:
    if inspect.isasyncgenfunction(fn):
        return await _stream(fn(ctx), ctx)
    if inspect.isgeneratorfunction(fn):
        return await _stream(_in_threads(fn(ctx)), ctx)
    if inspect.iscoroutinefunction(fn):
        return _text(await fn(ctx))
    return _text(await trio.to_thread.run_sync(fn, ctx, abandon_on_cancel=True))


async def _in_threads(generator: Iterator[Any]) -> AsyncIterator[Any]:
    done = object()
    while True:
        item = await trio.to_thread.run_sync(next, generator, done, abandon_on_cancel=True)
        if item is done:
            return
        yield item


async def _stream(chunks: AsyncIterator[Any], ctx: StepContext) -> str:
    parts: list[str] = []
    async for item in chunks:
        if isinstance(item, Progress):
            await ctx.progress(item.content, item.data)
        else:
            text = _text(item)
            parts.append(text)
            await ctx.progress(text)
    return "".join(parts)


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)
