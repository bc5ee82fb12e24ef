// server_panel.js: owns the server screen (#/server): GET /metrics.json every second while the
// page is visible, and small live charts of the last two minutes: live runs, events appended
// per second, live subscribers, open WebSockets, and the store's mean commit latency (both
// rates from the difference between two samples).

import { getJSON } from "./api.js";
import { sparkline } from "./charts.js";
import { el, setText } from "./dom.js";
import { formatCount, pollProblem } from "./format.js";
import { every } from "./polling.js";

const SAMPLES = 120;

const MEASURES = [
  { id: "live-runs", label: "Live runs", read: (now) => now.live_runs, show: formatCount },
  { id: "events-per-second", label: "Events/s", read: (now, before) => rate(now, before, (m) => m.events_appended), show: (v) => v.toFixed(1) },
  { id: "subscribers", label: "Live subscribers", read: (now) => now.live_subscribers, show: formatCount },
  { id: "open-sockets", label: "Open WebSockets", read: (now) => now.websockets_open, show: formatCount },
  { id: "commit-latency", label: "Store commit (mean ms)", read: commitLatency, show: (v) => v.toFixed(2) },
];

function rate(now, before, counter) {
  if (!before || now.time <= before.time) return NaN;
  return (counter(now) - counter(before)) / (now.time - before.time);
}

// The mean commit time, in ms, of the commits between two samples (none: NaN).
function commitLatency(now, before) {
  if (!before) return NaN;
  const commits = now.store_commit_seconds.count - before.store_commit_seconds.count;
  if (commits <= 0) return NaN;
  return ((now.store_commit_seconds.sum - before.store_commit_seconds.sum) / commits) * 1000;
}

export function showServerPanel(container) {
  const recent = new Map(MEASURES.map((measure) => [measure.id, []]));
  let previous = null;
  const problem = el("p", { id: "server-problem", class: "problem", role: "status", hidden: true });
  const about = el("p", { id: "server-about" });
  const cards = new Map(MEASURES.map((measure) => {
    const value = el("span", { class: "metric-value", id: `metric-${measure.id}` }, "–");
    const chart = el("div", { class: "metric-chart" });
    const card = el("figure", { class: "metric panel" }, el("figcaption", {}, measure.label), value, chart);
    return [measure.id, { card, value, chart }];
  }));
  container.replaceChildren(el("h2", {}, "Server"), about, problem,
    el("div", { class: "metrics" }, [...cards.values()].map((card) => card.card)));

  async function sample() {
    let now;
    try {
      now = await getJSON("/metrics.json");
    } catch (error) {
      problem.hidden = false;
      problem.dataset.kind = error.name;
      setText(problem, pollProblem(error));
      return;
    }
    problem.hidden = true;
    if (previous !== null && now.runs_started < previous.runs_started) previous = null; // restarted
    setText(about, `${now.node ? `Node ${now.node}: ` : ""}${formatCount(now.runs_started)} runs started; CPU ${now.cpu_seconds.toFixed(1)} s; memory ${(now.resident_memory_bytes / 2 ** 20).toFixed(0)} MiB.`);
    for (const measure of MEASURES) {
      const value = measure.read(now, previous);
      const values = recent.get(measure.id);
      values.push(value);
      if (values.length > SAMPLES) values.shift();
      const { value: shown, chart } = cards.get(measure.id);
      setText(shown, Number.isFinite(value) ? measure.show(value) : "–");
      chart.replaceChildren(sparkline(values, `${measure.label}, the last ${values.length} seconds`));
    }
    previous = now;
  }

  const poller = every(1_000, sample);
  return () => poller.stop();
}
