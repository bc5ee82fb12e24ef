"""The demo `runcast serve` serves: the `content-creation-workflow`, sized by the `--demo-*`
options, and the code-review example's graph tools."""

from __future__ import annotations

import attrs

from actors import WorkflowCatalog
from actors.workflows.examples.code_review import CODE_REVIEW_TOOLS
from actors.workflows.examples.content_creation import content_creation_workflow
from actors.workflows.tools import ToolRegistry


@attrs.frozen
class Demo:
    step_delay: float = 1.25  # seconds per step
    steps: int = 8
    progress: int = 2  # progress events per step

    def catalog(self) -> WorkflowCatalog:
        catalog = WorkflowCatalog()
        catalog.add(content_creation_workflow(self.step_delay, self.steps, self.progress))
        return catalog


def demo_tools() -> ToolRegistry:
    """The tools graphs can use in the demo: the code-review example's."""
    tools = ToolRegistry()
    for tool in CODE_REVIEW_TOOLS:
        tools.add(tool)
    return tools
