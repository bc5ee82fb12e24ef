"""What a run executes, and the catalog of workflows a runtime can start by id.

Any workflow kind (sequential steps here, graphs later) implements `WorkflowDefinition`: its
`execute` emits the run's step events through `emit` and returns the fields of the final
`WorkflowCompleted` event. The run actor emits `WorkflowStarted` and the terminal event itself,
so every run has both whatever the body does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from actors.events import RunInfo
from actors.excerpt import excerpt


class Emit(Protocol):
    async def __call__(self, kind: str, fields: dict[str, Any]) -> None: ...


class WorkflowFailed(Exception):
    """Raised by a body that has already reported the failure (e.g. as `StepError`); its message
    becomes the `error` of the run's `WorkflowError`."""


class WorkflowDefinition(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    async def execute(self, run: RunInfo, emit: Emit) -> dict[str, Any]: ...


class UnknownWorkflow(LookupError):
    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"Workflow {excerpt(workflow_id)} not found")
        self.workflow_id = workflow_id


class WorkflowCatalog:
    """Workflows by id. Registering an id twice is an error, not a silent replacement."""

    def __init__(self) -> None:
        self._workflows: dict[str, WorkflowDefinition] = {}

    def add(self, workflow: WorkflowDefinition) -> WorkflowDefinition:
        if workflow.id in self._workflows:
            raise ValueError(f"a workflow with id {workflow.id!r} is already registered")
        self._workflows[workflow.id] = workflow
        return workflow

    def get(self, workflow_id: str) -> WorkflowDefinition:
        try:
            return self._workflows[workflow_id]
        except KeyError:
            raise UnknownWorkflow(workflow_id) from None

    def __iter__(self) -> Iterator[WorkflowDefinition]:
        return iter(self._workflows.values())

    def __len__(self) -> int:
        return len(self._workflows)
