// run_view.js: owns the screen of one run (#/runs/<id>): its summary, its events as they
// arrive (each once, in order, through lost connections and server restarts: runcast.js's
// watch) with auto-scroll and a pause, the timeline of its steps, its graph when it is a graph
// run, its final output, a cancel button while it runs, and replay of a finished run from
// event 0 or from any index picked (#/runs/<id>?from=N).

import { AuthenticationFailed } from "/static/runcast.js";
import { authenticate, getJSON, runcast } from "./api.js";
import { el, setText } from "./dom.js";
import { eventContent, formatCount, formatDuration, formatTime, runDuration } from "./format.js";
import { GraphView } from "./graph_view.js";
import { every } from "./polling.js";
import { runAddress } from "./router.js";
import { Timeline } from "./timeline.js";

const TERMINAL = new Set(["WorkflowCompleted", "WorkflowError"]);
const WATCHING = new Set(["connecting", "live", "reconnecting"]);

function describeConnection(status) {
  switch (status.state) {
    case "connecting":
      return "connecting…";
    case "reconnecting":
      return `reconnecting… (attempt ${status.attempt}, next in ${(status.retryIn / 1000).toFixed(1)} s: ${status.reason})`;
    case "ended":
      return "ended: every event of the run is here";
    case "failed":
      return `failed: ${status.error.message}`;
    default:
      return status.state;
  }
}

function finalOutput(event) {
  if (event.event === "WorkflowError") return `Error: ${event.error ?? "(no message)"}`;
  if (event.status === "cancelled") return `Cancelled: ${event.reason ?? ""}`;
  const output = event.content ?? event.final_state ?? null;
  if (output === null) return "(no output)";
  return typeof output === "string" ? output : JSON.stringify(output, null, 2);
}

function summaryItem(label, id) {
  const value = el("dd", { id });
  return { node: el("div", {}, el("dt", {}, label), value), value };
}

export function showRun(container, { runId, fromIndex }) {
  let run = null; // GET /runs/<id>
  let watch = null;
  let watchToken = null; // the token the watch was made with
  let graph = null;
  let graphDefinition = null; // GET /graph/<workflow id>, for a graph run
  let timeline = null;
  let received = []; // this watch's events, for a graph definition that arrives after them
  let autoScroll = true;
  let scrollQueued = false;

  const summary = {
    status: summaryItem("Status", "run-status"),
    workflow: summaryItem("Workflow", "run-workflow"),
    node: summaryItem("Node", "run-node"),
    events: summaryItem("Events", "run-event-count"),
    started: summaryItem("Started", "run-started"),
    duration: summaryItem("Duration", "run-duration"),
  };
  const connection = el("output", { id: "connection", dataset: { state: "idle" }, "aria-live": "polite" }, "idle");
  const cancel = el("button", { type: "button", id: "cancel", class: "danger", disabled: true }, "Cancel the run");
  const problem = el("p", { id: "run-problem", class: "problem", role: "alert", hidden: true });
  const replayInput = el("input", { id: "replay-from", type: "number", min: "0", step: "1", value: String(fromIndex), inputmode: "numeric" });
  const replayButton = el("button", { type: "submit", id: "replay" }, "Replay from this event");
  const replayStart = el("button", { type: "button", id: "replay-start" }, "Replay from the start");
  const replayForm = el("form", { id: "replay-form", class: "inline-form", hidden: true },
    el("label", {}, "Event index ", replayInput), replayButton, replayStart);
  const pause = el("button", { type: "button", id: "autoscroll", "aria-pressed": "true" }, "Pause auto-scroll");
  const events = el("tbody", { id: "events" });
  const scroller = el("div", { class: "events-scroll", id: "events-scroll", tabindex: "0", "aria-label": "the run's events" },
    el("table", { class: "events-table" },
      el("thead", {}, el("tr", {}, ["Index", "Event", "Step", "Content"].map((name) => el("th", { scope: "col" }, name)))),
      events));
  const graphSection = el("section", { id: "graph-section", class: "panel", hidden: true, "aria-labelledby": "graph-heading" },
    el("h3", { id: "graph-heading" }, "Graph"));
  const timelineSection = el("section", { class: "panel", "aria-labelledby": "timeline-heading" },
    el("h3", { id: "timeline-heading" }, "Timeline"));
  const output = el("pre", { id: "output", class: "output" });
  const outputSection = el("section", { id: "output-section", class: "panel", hidden: true, "aria-labelledby": "output-heading" },
    el("h3", { id: "output-heading" }, "Final output"), output);

  container.replaceChildren(
    el("h2", {}, "Run ", el("code", { id: "run-id" }, runId)),
    el("dl", { class: "summary" }, Object.values(summary).map((item) => item.node)),
    el("div", { class: "toolbar" }, el("span", {}, "Connection: ", connection), cancel),
    problem,
    replayForm,
    el("div", { class: "run-grid" },
      el("section", { class: "panel events-panel", "aria-labelledby": "events-heading" },
        el("div", { class: "panel-head" }, el("h3", { id: "events-heading" }, "Events"), pause),
        scroller),
      el("div", { class: "run-side" }, graphSection, timelineSection, outputSection)),
  );

  function showProblem(message) {
    problem.hidden = message === null;
    problem.textContent = message ?? "";
  }

  function showSummary() {
    if (run === null) return;
    const status = run.status;
    summary.status.value.replaceChildren(el("span", { class: `status status-${status.toLowerCase()}` }, status));
    summary.status.value.dataset.status = status;
    setText(summary.workflow.value, run.workflow_name && run.workflow_name !== run.workflow_id
      ? `${run.workflow_name} (${run.workflow_id})` : run.workflow_id);
    setText(summary.node.value, run.node ?? "this server");
    setText(summary.started.value, formatTime(run.created_at));
    setText(summary.duration.value, formatDuration(runDuration(run)));
    const finished = status !== "RUNNING";
    replayForm.hidden = !finished;
    cancel.disabled = finished || cancel.dataset.requested === "true";
  }

  async function loadRun() {
    try {
      run = await getJSON(`/runs/${encodeURIComponent(runId)}`);
      showSummary();
    } catch (error) {
      showProblem(error.message);
    }
  }

  async function loadGraph() {
    try {
      graphDefinition = await getJSON(`/graph/${encodeURIComponent(run.workflow_id)}`);
    } catch {
      graphDefinition = null; // not a graph run
    }
    drawGraph();
  }

  // The graph of the definition, with the events received so far.
  function drawGraph() {
    graphSection.replaceChildren(graphSection.firstChild);
    graph = graphDefinition ? new GraphView(graphDefinition) : null;
    graphSection.hidden = graph === null;
    if (graph === null) return;
    received.forEach((event) => graph.apply(event));
    graphSection.append(graph.element);
  }

  function scrollToEnd() {
    if (!autoScroll || scrollQueued) return;
    scrollQueued = true;
    requestAnimationFrame(() => {
      scrollQueued = false;
      if (autoScroll) scroller.scrollTop = scroller.scrollHeight;
    });
  }

  function showEvent(event) {
    received.push(event);
    const row = el("tr", { dataset: { index: String(event.event_index), event: event.event } },
      el("td", { class: "number" }, String(event.event_index)),
      el("td", {}, event.event),
      el("td", {}, event.step_name ?? event.node ?? ""),
      el("td", { class: "content" }, eventContent(event)));
    events.append(row);
    setText(summary.events.value, formatCount(Math.max(event.event_index + 1, run?.event_count ?? 0)));
    timeline.apply(event);
    graph?.apply(event);
    if (TERMINAL.has(event.event)) {
      output.textContent = finalOutput(event);
      outputSection.hidden = false;
      cancel.disabled = true;
    }
    scrollToEnd();
  }

  function showConnection(status) {
    connection.dataset.state = status.state;
    setText(connection, describeConnection(status));
    if (status.state === "ended") loadRun();
    if (status.state === "failed" && status.error instanceof AuthenticationFailed) {
      authenticate("The server needs its token.", watchToken).then(() => follow(watch.lastIndex + 1));
    } else if (status.state === "failed") {
      showProblem(status.error.message);
    }
  }

  // Watch the run from `index` (a fresh table, timeline and graph when it is a new replay).
  function follow(index, fresh = false) {
    watch?.close();
    if (fresh) {
      events.replaceChildren();
      received = [];
      drawGraph();
    }
    if (fresh || timeline === null) {
      timeline = new Timeline();
      timelineSection.replaceChildren(timelineSection.firstChild, timeline.element);
      outputSection.hidden = true;
    }
    showProblem(null);
    watchToken = runcast().token;
    watch = runcast().watch(runId, { fromIndex: index, onEvent: showEvent, onStatus: showConnection });
  }

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    cancel.dataset.requested = "true";
    setText(cancel, "Cancelling…");
    try {
      await runcast().cancel(runId, { reason: "cancelled from the dashboard" });
    } catch (error) {
      showProblem(`The run was not cancelled: ${error.message}`);
    }
  });
  pause.addEventListener("click", () => {
    autoScroll = !autoScroll;
    pause.setAttribute("aria-pressed", String(autoScroll));
    setText(pause, autoScroll ? "Pause auto-scroll" : "Resume auto-scroll");
    scrollToEnd();
  });
  function replay(index) {
    replayInput.value = String(index);
    history.replaceState(null, "", runAddress(runId, index));
    follow(index, true);
  }
  replayForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const index = Number(replayInput.value);
    if (Number.isSafeInteger(index) && index >= 0) replay(index);
  });
  replayStart.addEventListener("click", () => replay(0));

  follow(fromIndex);
  loadRun().then(() => run !== null && loadGraph());
  const clock = every(1_000, async () => {
    if (run?.status === "RUNNING" && WATCHING.has(connection.dataset.state)) showSummary();
  });
  return () => {
    clock.stop();
    watch?.close();
  };
}
