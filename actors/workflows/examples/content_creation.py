"""The demo `content-creation-workflow`: 8 steps with 2 progress ticks each, 42 events a run.

It mirrors the function-only workflow the Agno frames in the spec were captured from: each step
waits `step_delay` seconds spread over its ticks, reports `"<step>: tick i/k"` (its `data` carries
`emitted_at`, the wall-clock time of the tick, so a client on the same machine can measure how
long an event took to reach it), and returns
`"[<step>] done for input='<message>' (prev_len=<length of the previous content>)"`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from actors.timer import sleep
from actors.workflows.steps import Step, StepContext, Workflow

WORKFLOW_ID = "content-creation-workflow"
WORKFLOW_NAME = "Content Creation Workflow"
STEP_NAMES = ("research", "outline", "draft", "edit", "fact_check", "seo", "format", "publish")


def step_names(count: int) -> list[str]:
    """The demo's step names, extended with `step_9`, `step_10`... past the eighth."""
    return [STEP_NAMES[i] if i < len(STEP_NAMES) else f"step_{i + 1}" for i in range(count)]


def _demo_step(
    name: str, index: int, delay: float, ticks: int
) -> Callable[[StepContext], Awaitable[str]]:
    async def executor(ctx: StepContext) -> str:
        for tick in range(ticks):
            await sleep(delay / ticks)
            await ctx.progress(
                f"{name}: tick {tick + 1}/{ticks}",
                {"step": index, "tick": tick, "emitted_at": time.time()},
            )
        if ticks == 0:
            await sleep(delay)
        previous = len(ctx.previous_content or "")
        return f"[{name}] done for input={ctx.input!r} (prev_len={previous})"

    executor.__name__ = f"{name}_executor"
    return executor


def content_creation_workflow(step_delay: float = 1.25, steps: int = 8, ticks: int = 2) -> Workflow:
    """Events per run: 2 + steps * (3 + ticks)."""
    return Workflow(
        WORKFLOW_ID,
        WORKFLOW_NAME,
        [Step(name, _demo_step(name, i, step_delay, ticks)) for i, name in enumerate(step_names(steps))],
        description="Demo: research, outline, draft, edit, fact-check, SEO, format, publish.",
    )
