// timeline.js: owns a run's timeline of steps: each step (or graph node pass) from its
// StepStarted to its StepCompleted / StepError, as a bar whose length is its duration, the
// running one drawn open-ended. A graph node's event says its `duration_ms`; a workflow step's
// is the difference of its events' `created_at`, whole seconds (as Agno's events have them),
// shown as such.

import { el } from "./dom.js";
import { formatDuration } from "./format.js";

// An event's time in seconds: its ISO `timestamp` (graph events) or its `created_at`.
function eventTime(event) {
  if (typeof event.timestamp === "string") return Date.parse(event.timestamp) / 1000;
  return event.created_at ?? null;
}

function stepKey(event) {
  return event.step_id ?? `${event.step_name}#${event.iteration ?? 0}`;
}

function wholeSeconds(seconds) {
  return seconds < 1 ? "< 1 s" : `${Math.round(seconds)} s`;
}

export class Timeline {
  constructor() {
    this.steps = new Map(); // key -> {name, start, end, seconds, state}
    this.element = el("ol", { class: "timeline", id: "timeline", "aria-label": "steps and their durations" });
  }

  apply(event) {
    const kind = event.event;
    if (kind === "StepStarted") {
      const name = event.iteration > 1 ? `${event.step_name} (pass ${event.iteration})` : event.step_name;
      this.steps.set(stepKey(event), { name, start: eventTime(event), seconds: null, precise: false, state: "running" });
    } else if (kind === "StepCompleted" || kind === "StepError") {
      const step = this.steps.get(stepKey(event));
      if (step === undefined) return;
      step.state = kind === "StepError" ? "failed" : "completed";
      step.precise = Number.isFinite(event.duration_ms);
      step.seconds = step.precise ? event.duration_ms / 1000 : eventTime(event) - step.start;
    } else if (kind === "WorkflowCompleted" || kind === "WorkflowError") {
      for (const step of this.steps.values()) {
        if (step.state === "running") {
          step.state = "stopped";
          step.seconds = eventTime(event) - step.start;
        }
      }
    } else {
      return;
    }
    this.render();
  }

  render() {
    const steps = [...this.steps.values()];
    const longest = Math.max(0.001, ...steps.map((step) => step.seconds ?? 0));
    this.element.replaceChildren(...steps.map((step) => {
      const bar = el("span", { class: `bar bar-${step.state}` });
      bar.style.width = step.seconds === null ? "100%" : `${Math.max(1, (100 * step.seconds) / longest)}%`;
      const took = step.seconds === null ? "running" : step.precise ? formatDuration(step.seconds) : wholeSeconds(step.seconds);
      return el("li", { dataset: { state: step.state } },
        el("span", { class: "step-name" }, step.name),
        el("span", { class: "bar-track" }, bar),
        el("span", { class: "step-time" }, took));
    }));
  }
}
