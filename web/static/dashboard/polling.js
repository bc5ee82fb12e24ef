// polling.js: owns the dashboard's live refreshes: `every(ms, poll)` calls `poll()` (async)
// again `ms` after each call ends, only while the page is visible, so a hidden tab or a closed
// dashboard costs the server nothing; `stop()` ends it.

export function every(ms, poll) {
  let timer = null;
  let stopped = false;
  let running = false;

  async function tick() {
    timer = null;
    if (stopped || running || document.visibilityState !== "visible") return;
    running = true;
    try {
      await poll();
    } finally {
      running = false;
      if (!stopped && document.visibilityState === "visible") timer = setTimeout(tick, ms);
    }
  }

  function visibilityChanged() {
    if (document.visibilityState === "visible" && timer === null) tick();
  }

  document.addEventListener("visibilitychange", visibilityChanged);
  tick();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", visibilityChanged);
    },
  };
}
