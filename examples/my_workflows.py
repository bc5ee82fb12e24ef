"""Workflows and graph tools of one's own: `runcast serve --app my_workflows:app`."""

from actors import StepContext, Workflow, WorkflowCatalog, sleep
from actors.workflows.tools import ToolRegistry
from web.app_loader import App

tools = ToolRegistry()


@tools.tool
def word_count(state, minimum=0):  # a graph node's params arrive as keyword arguments
    """Count the words of `text`."""  # the first docstring line is the tool's description
    words = len(state["text"].split())
    return {"words": words, "enough": words >= minimum}  # the node's state update


async def draft(ctx: StepContext) -> str:
    await ctx.progress("thinking", {"percent": 50})
    await sleep(0.1)
    return f"a note about {ctx.input}"


def shout(ctx: StepContext) -> str:  # sync: runs in a worker thread
    return ctx.previous_content.upper()


catalog = WorkflowCatalog()
catalog.add(Workflow("note", "Note", [draft, shout], description="A note, shouted"))

app = App(catalog=catalog, tools=tools)
