// start_view.js: owns the start screen (#/start): a run of any registered workflow with a
// message (runcast.js's start over the WebSocket), or a run of a graph with an initial state
// (POST /graph/run/background); either opens the new run's screen.

import { getJSON, postJSON, runcast } from "./api.js";
import { el } from "./dom.js";
import { runAddress } from "./router.js";

function problemLine(id) {
  return el("p", { id, class: "problem", role: "alert", hidden: true });
}

function showProblem(line, message) {
  line.hidden = message === null;
  line.textContent = message ?? "";
}

export function showStart(container) {
  const workflow = el("select", { id: "start-workflow", name: "workflow", required: true });
  const message = el("textarea", { id: "start-message", name: "message", rows: "3" }, "Write about structured concurrency");
  const startButton = el("button", { type: "submit", id: "start-run" }, "Start the run");
  const startProblem = problemLine("start-problem");
  const graphId = el("input", { id: "graph-id", name: "graph", required: true, spellcheck: "false", autocomplete: "off" });
  const graphState = el("textarea", { id: "graph-state", name: "state", rows: "6", spellcheck: "false" }, "{}");
  const graphButton = el("button", { type: "submit", id: "start-graph" }, "Start the graph run");
  const graphProblem = problemLine("graph-problem");

  const workflowForm = el("form", { id: "start-form", class: "panel stacked-form", "aria-labelledby": "start-heading" },
    el("h3", { id: "start-heading" }, "A workflow run"),
    el("label", { for: "start-workflow" }, "Workflow"), workflow,
    el("label", { for: "start-message" }, "Message"), message,
    startButton, startProblem);
  const graphForm = el("form", { id: "graph-form", class: "panel stacked-form", "aria-labelledby": "graph-form-heading" },
    el("h3", { id: "graph-form-heading" }, "A graph run"),
    el("label", { for: "graph-id" }, "Graph id (from POST /graph/create)"), graphId,
    el("label", { for: "graph-state" }, "Initial state (a JSON object)"), graphState,
    graphButton, graphProblem);
  container.replaceChildren(el("h2", {}, "Start a run"), el("div", { class: "start-grid" }, workflowForm, graphForm));

  getJSON("/workflows").then((workflows) => {
    workflow.replaceChildren(...workflows.map((w) => el("option", { value: w.id }, `${w.name} (${w.id})`)));
  }).catch((error) => showProblem(startProblem, `The workflows cannot be listed: ${error.message}`));

  workflowForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    startButton.disabled = true;
    showProblem(startProblem, null);
    try {
      const { runId } = await runcast().start(workflow.value, { message: message.value });
      location.hash = runAddress(runId);
    } catch (error) {
      showProblem(startProblem, `No run started: ${error.message}`);
    } finally {
      startButton.disabled = false;
    }
  });

  graphForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    showProblem(graphProblem, null);
    let initialState;
    try {
      initialState = JSON.parse(graphState.value);
    } catch (error) {
      showProblem(graphProblem, `The initial state is not JSON: ${error.message}`);
      return;
    }
    if (initialState === null || typeof initialState !== "object" || Array.isArray(initialState)) {
      showProblem(graphProblem, "The initial state must be a JSON object ({...}).");
      return;
    }
    graphButton.disabled = true;
    try {
      const started = await postJSON("/graph/run/background", { graph_id: graphId.value.trim(), initial_state: initialState });
      location.hash = runAddress(started.run_id);
    } catch (error) {
      showProblem(graphProblem, `No run started: ${error.message}`);
    } finally {
      graphButton.disabled = false;
    }
  });
  return () => {};
}
