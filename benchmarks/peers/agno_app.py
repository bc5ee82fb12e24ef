"""Agno AgentOS serving the demo `content-creation-workflow`: the benchmarks' comparison peer.

It mirrors runcast's demo (actors/workflows/examples/content_creation.py) with Agno's own
function-only workflow: AGNO_DEMO_STEPS steps (default 20), each waiting AGNO_DEMO_STEP_DELAY
seconds (default 0) spread over AGNO_DEMO_PROGRESS progress ticks (default 1). A tick is Agno's
`StepProgress` (content `"<step>: tick i/k"`, data `{step, tick, emitted_at}` where `emitted_at`
is the wall-clock time of the tick), and a step returns
`"[<step>] done for input='<message>' (prev_len=<length of the previous content>)"`.
A run emits 2 + steps * (3 + ticks) events, as runcast's demo does.

Runs only in the `.venv-agno` that benchmarks/peers/install_agno.sh makes (agno is not a
dependency of runcast): `.venv-agno/bin/python benchmarks/peers/agno_app.py --port 7780` serves
ws://127.0.0.1:7780/workflows/ws and /health from one uvicorn process (this one: its pid is the
server pid the harness measures). `--db PATH` gives the workflow Agno's SqliteDb, so sessions and
runs are also written to a SQLite file, as runcast's default store does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable

import uvicorn
from agno.db.sqlite import SqliteDb
from agno.os import AgentOS
from agno.workflow import Step, Workflow
from agno.workflow.types import StepInput, StepOutput, StepProgress

WORKFLOW_ID = "content-creation-workflow"
WORKFLOW_NAME = "Content Creation Workflow"
STEP_NAMES = ("research", "outline", "draft", "edit", "fact_check", "seo", "format", "publish")


def step_names(count: int) -> list[str]:
    """The demo's step names, extended with `step_9`, `step_10`... past the eighth."""
    return [STEP_NAMES[i] if i < len(STEP_NAMES) else f"step_{i + 1}" for i in range(count)]


def _demo_step(
    name: str, index: int, delay: float, ticks: int
) -> Callable[[StepInput], AsyncIterator[StepProgress | StepOutput]]:
    async def executor(step_input: StepInput) -> AsyncIterator[StepProgress | StepOutput]:
        for tick in range(ticks):
            await asyncio.sleep(delay / ticks)
            yield StepProgress(
                content=f"{name}: tick {tick + 1}/{ticks}",
                data={"step": index, "tick": tick, "emitted_at": time.time()},
            )
        if ticks == 0:
            await asyncio.sleep(delay)
        previous = len(str(step_input.previous_step_content or ""))
        yield StepOutput(content=f"[{name}] done for input={step_input.input!r} (prev_len={previous})")

    executor.__name__ = f"{name}_executor"
    return executor


def content_creation_workflow(step_delay: float, steps: int, ticks: int) -> Workflow:
    """Events per run: 2 + steps * (3 + ticks)."""
    return Workflow(
        id=WORKFLOW_ID,
        name=WORKFLOW_NAME,
        description="Demo: research, outline, draft, edit, fact-check, SEO, format, publish.",
        steps=[
            Step(name=name, executor=_demo_step(name, i, step_delay, ticks))
            for i, name in enumerate(step_names(steps))
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7780)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--db", metavar="PATH",
        help="keep sessions and runs in Agno's SqliteDb at PATH (default: no db, histories only in memory)",
    )
    args = parser.parse_args()
    workflow = content_creation_workflow(
        step_delay=float(os.environ.get("AGNO_DEMO_STEP_DELAY", "0")),
        steps=int(os.environ.get("AGNO_DEMO_STEPS", "20")),
        ticks=int(os.environ.get("AGNO_DEMO_PROGRESS", "1")),
    )
    db = SqliteDb(db_file=args.db) if args.db else None
    agent_os = AgentOS(id="runcast-bench-peer", db=db, workflows=[workflow], telemetry=False)
    uvicorn.run(
        agent_os.get_app(), host="127.0.0.1", port=args.port, workers=1,
        log_level=args.log_level, access_log=False,
    )


if __name__ == "__main__":
    main()
