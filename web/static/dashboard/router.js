// router.js: owns the dashboard's addresses, hash routes that survive a reload and can be
// shared: #/runs (the runs list), #/runs/<run id> (one run; ?from=N replays from event N),
// #/start (start a run), #/server (the server panel). Anything else is the runs list.

export function parseRoute(hash) {
  const [path, query = ""] = hash.replace(/^#/, "").split("?", 2);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (parts[0] === "runs" && parts.length === 2) {
    const from = Number(params.get("from") ?? "0");
    return { name: "run", runId: parts[1], fromIndex: Number.isSafeInteger(from) && from >= 0 ? from : 0 };
  }
  if (parts[0] === "start") return { name: "start" };
  if (parts[0] === "server") return { name: "server" };
  return { name: "runs" };
}

export function runAddress(runId, fromIndex = 0) {
  const address = `#/runs/${encodeURIComponent(runId)}`;
  return fromIndex > 0 ? `${address}?from=${fromIndex}` : address;
}

// Calls `show(route)` now and on every change of the address.
export function followRoutes(show) {
  window.addEventListener("hashchange", () => show(parseRoute(location.hash)));
  show(parseRoute(location.hash));
}
