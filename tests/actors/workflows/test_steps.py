"""actors/workflows/steps.py and catalog.py: sequential steps in their four forms, the events each
step emits (Agno's shape), failures reported as StepError, and the workflow catalog.

`Workflow.execute` is run directly with a recording `emit` (the unit under test's collaborator,
not a stand-in for a user-facing component)."""

from __future__ import annotations

import time
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from actors.events import (
    STEP_COMPLETED,
    STEP_ERROR,
    STEP_OUTPUT,
    STEP_PROGRESS,
    STEP_STARTED,
    RunInfo,
)
from actors.workflows.catalog import UnknownWorkflow, WorkflowCatalog, WorkflowFailed
from actors.workflows.examples.content_creation import (
    WORKFLOW_ID,
    content_creation_workflow,
    step_names,
)
from actors.workflows.steps import Progress, Step, StepContext, Workflow

RUN = RunInfo("run-1", "wf", "WF", "session-1", message="x")


@attrs.define
class Recorder:
    events: list[tuple[str, dict[str, Any]]] = attrs.field(factory=list)

    async def __call__(self, kind: str, fields: dict[str, Any]) -> None:
        self.events.append((kind, fields))

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [fields for k, fields in self.events if k == kind]


async def execute(
    workflow: Workflow, run: RunInfo = RUN, *, guard: float = 10
) -> tuple[dict[str, Any], Recorder]:
    emit = Recorder()
    with trio.fail_after(guard):
        result = await workflow.execute(run, emit)
    return result, emit


# --- the four step forms -----------------------------------------------------------------------


async def test_sync_step_runs_in_a_worker_thread() -> None:
    threads: list[threading.Thread] = []

    def blocking(ctx: StepContext) -> str:
        threads.append(threading.current_thread())
        return f"sync:{ctx.input}"

    result, emit = await execute(Workflow("w", "W", [blocking]))
    assert threads and threads[0] is not threading.current_thread()
    assert result["content"] == "sync:x"
    assert emit.kinds == [STEP_STARTED, STEP_OUTPUT, STEP_COMPLETED]


async def test_async_step_streams_progress() -> None:
    async def working(ctx: StepContext) -> str:
        await ctx.progress("half", {"pct": 50})
        await ctx.progress(data={"pct": 100})
        return "async done"

    result, emit = await execute(Workflow("w", "W", [working]))
    assert emit.kinds == [STEP_STARTED, STEP_PROGRESS, STEP_PROGRESS, STEP_OUTPUT, STEP_COMPLETED]
    first, second = emit.of(STEP_PROGRESS)
    assert (first["content"], first["data"]) == ("half", {"pct": 50})
    assert (second["content"], second["data"]) == (None, {"pct": 100})
    for progress in (first, second):
        assert progress["step_name"] == "working" and progress["step_index"] == 0
    assert result["content"] == "async done"


async def test_sync_generator_streams_partial_content_from_a_thread() -> None:
    threads: list[threading.Thread] = []

    def chunks(ctx: StepContext) -> Iterator[Any]:
        threads.append(threading.current_thread())
        yield "Hel"
        yield Progress("thinking", {"tick": 1})
        yield "lo"
        yield Progress(data={"tick": 2})
        yield 42

    result, emit = await execute(Workflow("w", "W", [chunks]))
    assert threads[0] is not threading.current_thread()
    progress = [(p["content"], p["data"]) for p in emit.of(STEP_PROGRESS)]
    assert progress == [
        ("Hel", None), ("thinking", {"tick": 1}), ("lo", None), (None, {"tick": 2}), ("42", None)
    ]
    assert result["content"] == "Hello42"  # Progress items add nothing to the content
    assert emit.of(STEP_COMPLETED)[0]["content"] == "Hello42"


async def test_async_generator_streams_partial_content() -> None:
    async def chunks(ctx: StepContext) -> AsyncIterator[Any]:
        yield "a"
        await trio.lowlevel.checkpoint()
        yield Progress("tick")
        yield "b"
        yield ""

    result, emit = await execute(Workflow("w", "W", [chunks]))
    assert [p["content"] for p in emit.of(STEP_PROGRESS)] == ["a", "tick", "b", ""]
    assert result["content"] == "ab"


async def test_empty_generator_gives_empty_content() -> None:
    def nothing(ctx: StepContext) -> Iterator[str]:
        yield from ()

    result, emit = await execute(Workflow("w", "W", [nothing]))
    assert result["content"] == ""
    assert STEP_PROGRESS not in emit.kinds


@pytest.mark.parametrize(("value", "content"), [(None, ""), (12, "12"), ("s", "s")])
async def test_non_string_results_become_text(value: Any, content: str) -> None:
    async def returns(ctx: StepContext) -> Any:
        return value

    result, _ = await execute(Workflow("w", "W", [returns]))
    assert result["content"] == content


# --- events and chaining -----------------------------------------------------------------------


async def test_each_step_emits_started_output_completed_with_consistent_ids() -> None:
    async def first(ctx: StepContext) -> str:
        return "one"

    def second(ctx: StepContext) -> str:
        return "two"

    result, emit = await execute(Workflow("w", "W", [first, Step("custom", second)]))
    assert emit.kinds == [STEP_STARTED, STEP_OUTPUT, STEP_COMPLETED] * 2
    started = emit.of(STEP_STARTED)
    outputs = emit.of(STEP_OUTPUT)
    completed = emit.of(STEP_COMPLETED)
    assert [s["step_name"] for s in started] == ["first", "custom"]
    assert [s["step_index"] for s in started] == [0, 1]
    ids = [s["step_id"] for s in started]
    assert len(set(ids)) == 2
    assert [c["step_id"] for c in completed] == ids
    assert [o["step_output"]["step_id"] for o in outputs] == ids
    for output, name, content in zip(outputs, ["first", "custom"], ["one", "two"], strict=True):
        assert output["step_name"] == name
        assert output["step_output"]["content"] == content
        assert output["step_output"]["step_name"] == name
        assert output["step_output"]["success"] is True
    assert outputs[1]["step_output"]["executor_name"] == "second"
    assert [c["content"] for c in completed] == ["one", "two"]
    assert result["content"] == "two"
    assert [r["content"] for r in result["step_results"]] == ["one", "two"]
    assert set(result["metrics"]) >= {"steps", "duration"}


async def test_each_step_gets_the_previous_steps_content_and_the_run_message() -> None:
    seen: list[tuple[str | None, str, int, str]] = []

    async def record(ctx: StepContext) -> str:
        seen.append((ctx.previous_content, ctx.input, ctx.step_index, ctx.step_name))
        return f"{ctx.step_name}-out"

    steps = [Step(name, record) for name in ("a", "b", "c")]
    await execute(Workflow("w", "W", steps), attrs.evolve(RUN, message="the input"))
    assert seen == [
        (None, "the input", 0, "a"),
        ("a-out", "the input", 1, "b"),
        ("b-out", "the input", 2, "c"),
    ]


# --- failures ----------------------------------------------------------------------------------


async def test_a_raising_step_emits_step_error_then_raises_workflow_failed() -> None:
    ran: list[str] = []

    async def ok(ctx: StepContext) -> str:
        ran.append("ok")
        return "fine"

    def broken(ctx: StepContext) -> str:
        raise RuntimeError("disk on fire")

    async def never(ctx: StepContext) -> str:
        ran.append("never")
        return "unreachable"

    emit = Recorder()
    with trio.fail_after(10), pytest.raises(WorkflowFailed, match="disk on fire") as raised:
        await Workflow("w", "W", [ok, broken, never]).execute(RUN, emit)
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert ran == ["ok"]
    assert emit.kinds == [STEP_STARTED, STEP_OUTPUT, STEP_COMPLETED, STEP_STARTED, STEP_ERROR]
    error = emit.of(STEP_ERROR)[0]
    assert error["error"] == "disk on fire"
    assert error["step_name"] == "broken" and error["step_index"] == 1
    assert error["step_id"] == emit.of(STEP_STARTED)[1]["step_id"]


async def test_a_generator_failing_midway_reports_step_error() -> None:
    def partial(ctx: StepContext) -> Iterator[str]:
        yield "part"
        raise ValueError()

    emit = Recorder()
    with trio.fail_after(10), pytest.raises(WorkflowFailed, match="ValueError"):
        await Workflow("w", "W", [partial]).execute(RUN, emit)
    assert emit.kinds == [STEP_STARTED, STEP_PROGRESS, STEP_ERROR]
    assert emit.of(STEP_ERROR)[0]["error"] == "ValueError"  # empty message: the type's name


async def test_cancellation_is_not_reported_as_a_step_error() -> None:
    entered = trio.Event()

    async def waits(ctx: StepContext) -> str:
        entered.set()
        await trio.sleep_forever()
        return "never"

    emit = Recorder()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def body() -> None:
                await Workflow("w", "W", [waits]).execute(RUN, emit)

            nursery.start_soon(body)
            await entered.wait()
            nursery.cancel_scope.cancel()
    assert emit.kinds == [STEP_STARTED]


# --- definition errors -------------------------------------------------------------------------


def test_duplicate_step_names_are_refused() -> None:
    async def a(ctx: StepContext) -> str:
        return ""

    async def b(ctx: StepContext) -> str:
        return ""

    with pytest.raises(ValueError, match="repeated: a"):
        Workflow("w", "W", [a, a])
    with pytest.raises(ValueError, match="repeated: b"):
        Workflow("w", "W", [a, Step("b", a), b])


def test_empty_step_list_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        Workflow("w", "W", [])


def test_catalog_refuses_duplicate_ids_and_names_unknown_workflows() -> None:
    async def a(ctx: StepContext) -> str:
        return ""

    catalog = WorkflowCatalog()
    first = Workflow("flow", "Flow", [a])
    assert catalog.add(first) is first
    with pytest.raises(ValueError, match="flow"):
        catalog.add(Workflow("flow", "Other", [a]))
    assert catalog.get("flow") is first  # the first registration is kept
    assert len(catalog) == 1 and list(catalog) == [first]
    with pytest.raises(UnknownWorkflow) as raised:
        catalog.get("nope")
    assert str(raised.value) == "Workflow nope not found"
    assert raised.value.workflow_id == "nope"
    assert isinstance(raised.value, LookupError)


# --- the demo workflow -------------------------------------------------------------------------


async def test_demo_step_contents_chain_previous_lengths() -> None:
    workflow = content_creation_workflow(0, steps=3, ticks=2)
    assert workflow.id == WORKFLOW_ID
    result, emit = await execute(workflow)
    contents = [c["content"] for c in emit.of(STEP_COMPLETED)]
    assert contents[0] == "[research] done for input='x' (prev_len=0)"
    assert contents[1] == f"[outline] done for input='x' (prev_len={len(contents[0])})"
    assert contents[2] == f"[draft] done for input='x' (prev_len={len(contents[1])})"
    assert result["content"] == contents[2]
    progress = emit.of(STEP_PROGRESS)
    assert [p["content"] for p in progress[:2]] == ["research: tick 1/2", "research: tick 2/2"]
    data = [p["data"] for p in progress[:2]]
    assert [(d["step"], d["tick"]) for d in data] == [(0, 0), (0, 1)]
    assert all(abs(d["emitted_at"] - time.time()) < 60 for d in data)  # wall-clock seconds


@pytest.mark.parametrize(("steps", "ticks"), [(1, 0), (3, 2), (10, 1)])
async def test_demo_body_emits_steps_times_3_plus_ticks_events(steps: int, ticks: int) -> None:
    """StepStarted, k x StepProgress, StepOutput, StepCompleted per step; the run actor adds
    WorkflowStarted and the terminal event (8 steps, 2 ticks: 2 + 8 * 5 = 42 as in the spec)."""
    _, emit = await execute(content_creation_workflow(0, steps=steps, ticks=ticks))
    assert len(emit.events) == steps * (3 + ticks)
    assert [s["step_name"] for s in emit.of(STEP_STARTED)] == step_names(steps)


def test_demo_step_names_extend_past_eight() -> None:
    assert step_names(10)[7:] == ["publish", "step_9", "step_10"]
    assert step_names(0) == []


async def test_demo_step_waits_its_delay_on_the_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    await execute(content_creation_workflow(1.25, steps=8, ticks=2), guard=600)
    assert trio.current_time() - start == pytest.approx(8 * 1.25)
