// The example page (example.html): start a run, or follow one by its id, and show its events
// live with the state of the connection, on runcast.js alone. The page talks to the server
// that served it.

import { RuncastClient } from "./runcast.js";

const client = new RuncastClient({ url: location.origin });
const $ = (id) => document.getElementById(id);
let watch = null;

function showProblem(error) {
  $("problem").hidden = error === null;
  $("problem").textContent = error === null ? "" : `${error.name}: ${error.message}`;
}

function describe(status) {
  switch (status.state) {
    case "reconnecting":
      return `reconnecting (attempt ${status.attempt}, in ${status.retryIn} ms): ${status.reason}`;
    case "failed":
      return `failed: ${status.error.message}`;
    case "ended":
      return "ended: every event of the run is here";
    default:
      return status.state;
  }
}

function showStatus(status) {
  $("status").dataset.state = status.state;
  $("status").textContent = describe(status);
  $("cancel").disabled = !["connecting", "live", "reconnecting"].includes(status.state);
  if (["ended", "failed"].includes(status.state)) refreshRuns();
}

function showEvent(event) {
  const row = document.createElement("tr");
  row.dataset.index = event.event_index;
  row.dataset.event = event.event;
  const content = event.content ?? event.error ?? "";
  const text = typeof content === "string" ? content : JSON.stringify(content);
  for (const cell of [event.event_index, event.event, event.step_name ?? "", text.slice(0, 120)]) {
    row.insertCell().textContent = cell;
  }
  $("events").append(row);
}

function follow(runId) {
  watch?.close();
  $("events").replaceChildren();
  $("run").textContent = runId;
  $("run-id").value = runId;
  showProblem(null);
  watch = client.watch(runId, { onEvent: showEvent, onStatus: showStatus });
}

async function refreshRuns() {
  try {
    const runs = await client.listRuns({ limit: 10 });
    $("runs").replaceChildren(
      ...runs.map((run) => {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = run.run_id;
        button.addEventListener("click", () => follow(run.run_id));
        item.append(button, ` ${run.workflow_id}: ${run.status}, ${run.event_count} events`);
        return item;
      }),
    );
  } catch (error) {
    showProblem(error);
  }
}

$("start-form").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  $("start").disabled = true;
  try {
    const { runId } = await client.start($("workflow").value, { message: $("message").value });
    follow(runId);
    refreshRuns();
  } catch (error) {
    showProblem(error);
  } finally {
    $("start").disabled = false;
  }
});

$("follow-form").addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  follow($("run-id").value.trim());
});

$("cancel").addEventListener("click", async () => {
  try {
    await client.cancel(watch.runId, { reason: "cancelled from the example page" });
  } catch (error) {
    showProblem(error);
  }
});

try {
  const workflows = await client.workflows();
  $("workflow").replaceChildren(
    ...workflows.map((workflow) => new Option(`${workflow.name} (${workflow.id})`, workflow.id)),
  );
  $("start").disabled = workflows.length === 0;
  await refreshRuns();
} catch (error) {
  showProblem(error);
}
