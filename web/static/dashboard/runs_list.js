// runs_list.js: owns the runs screen (#/runs): the newest runs, filtered by status and
// workflow and searched by run id prefix, a page at a time (GET /runs with its `before`
// cursor). The first page refreshes itself every second while the page is visible, in place
// (rows are kept by run id, so focus and reading position stay); a later page stays as it is
// and says how many runs arrived since it was opened.

import { getJSON } from "./api.js";
import { el, setText } from "./dom.js";
import { formatCount, formatDuration, formatTime, pollProblem, runDuration } from "./format.js";
import { every } from "./polling.js";
import { runAddress } from "./router.js";

const PAGE_SIZE = 50;
const REFRESH_MS = 1_000;
const COUNTS_MS = 5_000; // the counts by status change less often, and cost the store more
const ARRIVALS_COUNTED = 100; // a later page counts the runs that arrived up to this many
const STATUSES = ["RUNNING", "COMPLETED", "ERROR", "CANCELLED"];
const COLUMNS = ["Run", "Status", "Workflow", "Node", "Events", "Started", "Duration"];

function runsQuery({ status, workflow, search }, before = null, limit = PAGE_SIZE) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (status) query.set("status", status);
  if (workflow) query.set("workflow_id", workflow);
  if (search) query.set("q", search);
  if (before) query.set("before", before);
  return `/runs?${query}`;
}

function statusBadge(status) {
  return el("span", { class: `status status-${status.toLowerCase()}` }, status);
}

export function showRunsList(container) {
  const filters = { status: "", workflow: "", search: "" };
  const cursors = [null]; // the `before` of each page opened so far; the last is the current
  const rows = new Map(); // run id -> row
  const knownWorkflows = new Map(); // workflow id -> name
  let newestOnOpen = null; // created_at of the first page's newest run, when it was last shown
  let asked = 0; // the latest refresh: an earlier one's answer, come late, is dropped
  let countedAt = -Infinity; // when the counts by status were last asked for

  const statusSelect = el("select", { id: "filter-status", name: "status" },
    el("option", { value: "" }, "every status"),
    STATUSES.map((status) => el("option", { value: status, dataset: { status } }, status)));
  const workflowSelect = el("select", { id: "filter-workflow", name: "workflow" },
    el("option", { value: "" }, "every workflow"));
  const searchInput = el("input", {
    id: "filter-search", name: "search", type: "search", placeholder: "run id or its start",
    spellcheck: "false", autocomplete: "off",
  });
  const problem = el("p", { id: "runs-problem", class: "problem", role: "status", hidden: true });
  const body = el("tbody", { id: "runs" });
  const newer = el("button", { type: "button", id: "page-newer", disabled: true }, "← Newer");
  const older = el("button", { type: "button", id: "page-older", disabled: true }, "Older →");
  const pageLabel = el("span", { id: "page-number" }, "page 1");
  const arrived = el("p", { id: "runs-arrived", class: "notice", role: "status", hidden: true });
  const newest = el("button", { type: "button", id: "page-newest" }, "Show the newest");
  arrived.append(el("span"), " ", newest);

  container.replaceChildren(
    el("h2", {}, "Runs"),
    el("form", { class: "filters", role: "search", onsubmit: (event) => event.preventDefault() },
      el("label", {}, "Status ", statusSelect),
      el("label", {}, "Workflow ", workflowSelect),
      el("label", {}, "Search ", searchInput)),
    problem,
    arrived,
    el("div", { class: "table-scroll" },
      el("table", { class: "runs-table" },
        el("caption", { class: "visually-hidden" }, "Runs, newest first"),
        el("thead", {}, el("tr", {}, COLUMNS.map((name) => el("th", { scope: "col" }, name)))),
        body)),
    el("nav", { class: "pager", "aria-label": "pages of runs" }, newer, pageLabel, older),
  );

  function addWorkflow(id, name) {
    if (knownWorkflows.has(id)) return;
    knownWorkflows.set(id, name);
    workflowSelect.append(el("option", { value: id }, name && name !== id ? `${name} (${id.slice(0, 8)})` : id));
  }

  function rowOf(run) {
    let row = rows.get(run.run_id);
    if (row === undefined) {
      const link = el("a", { href: runAddress(run.run_id), class: "run-link", "aria-label": `run ${run.run_id}` },
        run.run_id.slice(0, 8), el("span", { class: "run-id-rest" }, run.run_id.slice(8)));
      row = el("tr", { dataset: { runId: run.run_id } },
        el("td", { class: "run-id" }, link), el("td"), el("td"), el("td"), el("td", { class: "number" }),
        el("td"), el("td", { class: "number" }));
      rows.set(run.run_id, row);
    }
    const cells = row.cells;
    if (row.dataset.status !== run.status) {
      row.dataset.status = run.status;
      cells[1].replaceChildren(statusBadge(run.status));
    }
    setText(cells[2], run.workflow_name || run.workflow_id);
    setText(cells[3], run.node ?? "");
    setText(cells[4], formatCount(run.event_count));
    setText(cells[5], formatTime(run.created_at));
    setText(cells[6], formatDuration(runDuration(run)));
    return row;
  }

  // Rows in the runs' order; a row already in place is not moved (moving drops its focus).
  function showRuns(runs) {
    const wanted = new Set(runs.map((run) => run.run_id));
    for (const [runId, row] of rows) {
      if (!wanted.has(runId)) {
        row.remove();
        rows.delete(runId);
      }
    }
    runs.forEach((run, position) => {
      addWorkflow(run.workflow_id, run.workflow_name);
      const row = rowOf(run);
      const there = body.rows[position];
      if (there !== row) body.insertBefore(row, there ?? null);
    });
    if (runs.length === 0) {
      body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: COLUMNS.length }, "No runs match.")));
    } else {
      body.querySelector("tr.empty")?.remove();
    }
  }

  async function showCounts() {
    const { counts } = await getJSON("/runs/counts");
    for (const option of statusSelect.options) {
      const status = option.dataset.status;
      if (status) setText(option, `${status} (${formatCount(counts[status] ?? 0)})`);
    }
  }

  async function refresh() {
    const before = cursors.at(-1);
    const ask = ++asked;
    try {
      const page = await getJSON(runsQuery(filters, before));
      if (ask !== asked) return;
      showRuns(page.runs);
      if (cursors.length === 1) newestOnOpen = page.runs[0]?.created_at ?? null;
      older.disabled = page.next === null || page.next === undefined;
      older.dataset.next = page.next ?? "";
      newer.disabled = cursors.length === 1;
      setText(pageLabel, `page ${cursors.length}`);
      problem.hidden = true;
      if (performance.now() - countedAt >= COUNTS_MS) {
        countedAt = performance.now();
        await showCounts();
      }
    } catch (error) {
      if (ask !== asked) return;
      problem.hidden = false;
      problem.dataset.kind = error.name;
      setText(problem, pollProblem(error));
    }
  }

  // On a later page: how many runs (of these filters) started since it was opened.
  async function countArrivals() {
    if (newestOnOpen === null) return;
    const latest = await getJSON(runsQuery(filters, null, ARRIVALS_COUNTED)).catch(() => null);
    if (latest === null) return;
    const count = latest.runs.filter((run) => run.created_at > newestOnOpen).length;
    const counted = count >= ARRIVALS_COUNTED ? `${ARRIVALS_COUNTED} or more` : String(count);
    arrived.hidden = count === 0;
    setText(arrived.firstChild, `${counted} new run${count === 1 ? "" : "s"} since this page was opened.`);
  }

  const poller = every(REFRESH_MS, () => (cursors.length === 1 ? refresh() : countArrivals()));

  function reopen(fromTheStart) {
    if (fromTheStart) cursors.splice(1);
    arrived.hidden = true;
    refresh();
  }

  for (const control of [statusSelect, workflowSelect]) {
    control.addEventListener("change", () => {
      filters.status = statusSelect.value;
      filters.workflow = workflowSelect.value;
      reopen(true);
    });
  }
  searchInput.addEventListener("input", () => {
    filters.search = searchInput.value.trim();
    reopen(true);
  });
  older.addEventListener("click", () => {
    cursors.push(older.dataset.next);
    reopen(false);
  });
  newer.addEventListener("click", () => {
    cursors.pop();
    reopen(false);
  });
  newest.addEventListener("click", () => reopen(true));

  getJSON("/workflows").then((workflows) => workflows.forEach((w) => addWorkflow(w.id, w.name))).catch(() => {});
  return () => poller.stop();
}
