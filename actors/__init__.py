"""runcast's actor runtime: supervised run actors with durable, gap-free event histories.

No web code lives here; `web/` bridges this runtime to WebSocket and HTTP clients.
"""

from actors.events import RunInfo, RunStatus
from actors.follow import Follow
from actors.runlog import IndexBeyondRun, RunLost
from actors.runtime import (
    CancelOutcome,
    Runtime,
    RuntimeClosing,
    StoreUnavailable,
    UnknownRun,
    open_runtime,
)
from actors.store import open_store
from actors.timer import sleep
from actors.workflows.catalog import UnknownWorkflow, WorkflowCatalog, WorkflowFailed
from actors.workflows.steps import Progress, Step, StepContext, Workflow

__all__ = [
    "CancelOutcome",
    "Follow",
    "IndexBeyondRun",
    "Progress",
    "RunInfo",
    "RunLost",
    "RunStatus",
    "Runtime",
    "RuntimeClosing",
    "Step",
    "StoreUnavailable",
    "StepContext",
    "UnknownRun",
    "UnknownWorkflow",
    "Workflow",
    "WorkflowCatalog",
    "WorkflowFailed",
    "open_runtime",
    "open_store",
    "sleep",
]
