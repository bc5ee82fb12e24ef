// format.js: owns how values read on screen: times, durations, counts, and the one-line
// content of a run event (its text, its error, its step's output or its state update).

const CONTENT_LIMIT = 300;

export function formatTime(unixSeconds) {
  if (unixSeconds === null || unixSeconds === undefined) return "";
  return new Date(unixSeconds * 1000).toLocaleString(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

// A run's duration: to its end, or to now while it runs.
export function runDuration(run, now = Date.now() / 1000) {
  if (!run?.created_at) return null;
  return (run.finished_at ?? now) - run.created_at;
}

export function formatCount(value) {
  return Number.isFinite(value) ? value.toLocaleString() : "–";
}

function asText(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function eventContent(event) {
  let text = "";
  if (event.content !== undefined) text = asText(event.content);
  else if (event.error !== undefined) text = asText(event.error);
  else if (event.step_output?.content !== undefined) text = asText(event.step_output.content);
  else if (event.state_update !== undefined) text = asText(event.state_update);
  else if (event.event === "GraphTransition") text = `${event.from} → ${event.to}`;
  else if (event.message !== undefined) text = asText(event.message);
  return text.length > CONTENT_LIMIT ? `${text.slice(0, CONTENT_LIMIT)}…` : text;
}

// What a failed poll says: the server is away (the poll goes on), or it refused.
export function pollProblem(error) {
  return error.name === "ConnectionLost" ? `Reconnecting… (${error.message})` : `The server refused: ${error.message}`;
}
