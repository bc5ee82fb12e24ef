// runcast.js: a browser client of a runcast server, one ES module without dependencies or a
// build step (the server serves it at /static/runcast.js). It speaks only the server's public
// protocols: the workflow WebSocket protocol (/workflows/ws: start-workflow, reconnect,
// cancel-run, authenticate, ping) and HTTP (/workflows, /runs, /runs/{run_id}), with the same
// meaning as the Python client (client/):
//
//   import { RuncastClient } from "/static/runcast.js";
//   const client = new RuncastClient({ url: location.origin, token: null });
//   const { runId } = await client.start("content-creation-workflow", { message: "hi" });
//   const watch = client.watch(runId, { onEvent: (event) => ..., onStatus: (status) => ... });
//   await watch.done;   // every event once, in order, up to WorkflowCompleted / WorkflowError
//
// A watch resumes by itself: after a lost connection or a server restart it reconnects with
// backoff and jitter, authenticates again when the client has a token, asks for the events
// after the last one it delivered, drops anything at or below it, and reconnects on a gap.
// The pure parts (WatchCursor: which frames to deliver; Backoff and Retrying: when to try
// again) do no I/O; Session, Watch and RuncastClient are the I/O around them.

export const TERMINAL_EVENTS = new Set(["WorkflowCompleted", "WorkflowError"]);

// The server's answers to `reconnect`: it is serving the watch.
export const OPENINGS = new Set(["catch_up", "subscribed", "replay"]);

// Error frames that mean "not now": the watch reconnects later from its cursor.
const PASSING_TROUBLES = [
  "the store cannot be read", // a read failed (Redis unreachable...)
  "is interrupted", // the live stream of a run owned by another node
  "the store cannot record its end", // the run is lost until the store can close it
  "the server is shutting down",
];
const RUN_NOT_FOUND = /^Run ([\s\S]*) not found$/;
const WORKFLOW_NOT_FOUND = /^Workflow ([\s\S]*) not found$/;
const HISTORY_GONE = /^the history of run (\S+) is gone/;
const BEYOND_THE_RUN = /^last_event_index -?\d+ is beyond .* \(it has (\d+) events/;

// What the client throws (and what a failed watch's `done` rejects with): one hierarchy.

export class RuncastError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

// The server answered and refused the request; the message is the server's own.
export class Refused extends RuncastError {}

export class RunNotFound extends Refused {
  constructor(runId, message) {
    super(message || `Run ${runId} not found`);
    this.runId = runId;
  }
}

export class WorkflowNotFound extends Refused {
  constructor(workflowId, message) {
    super(message || `Workflow ${workflowId} not found`);
    this.workflowId = workflowId;
  }
}

// The run's events are no longer kept (a Redis store's --retention).
export class HistoryGone extends Refused {
  constructor(runId, message) {
    super(message || `the history of run ${runId} is gone`);
    this.runId = runId;
  }
}

// The server wants a token and was given none, or a wrong one.
export class AuthenticationFailed extends Refused {}

// The server failed to serve the request (an HTTP 5xx, an answer outside the protocol).
export class ServerError extends RuncastError {}

// The server cannot be reached or the connection broke: at once for one-shot requests, and
// for a watch once its backoff gives up.
export class ConnectionLost extends RuncastError {}

// What an error frame's message means: the error that ends the request, or null for a passing
// trouble (reconnect later). `runId`: the run the request was about (the message may quote
// only the start of a long id).
export function refusal(message, runId = null) {
  if (PASSING_TROUBLES.some((trouble) => message.includes(trouble))) return null;
  let match = HISTORY_GONE.exec(message);
  if (match) return new HistoryGone(runId || match[1], message);
  match = RUN_NOT_FOUND.exec(message);
  if (match) return new RunNotFound(runId || match[1], message);
  match = WORKFLOW_NOT_FOUND.exec(message);
  if (match) return new WorkflowNotFound(match[1], message);
  if (message.startsWith("internal error") || message.startsWith("following run")) {
    return new ServerError(message);
  }
  return new Refused(message);
}

function eventIndex(frame) {
  const index = frame.event_index;
  return Number.isSafeInteger(index) ? index : null;
}

const IGNORE = Object.freeze({ action: "ignore" });

// A watch's cursor, without I/O: what to do with each frame the server sends while the client
// follows one run, and what to send on each (re)connection. `lastIndex` is the index of the
// last event delivered (`fromIndex - 1` at first). Each connection sends `reconnect` with
// `last_event_index` = the cursor (null before any event); the server answers `catch_up` + the
// missed events + `subscribed` + the live ones for a running run, or `replay` + every event
// from index 0 for a finished one. `receive(frame)` gives one step:
// - {action: "deliver", event}: the event right after the cursor (the cursor moves to it);
// - {action: "ignore"}: an event at the cursor or below it (a replay from 0, a duplicate), a
//   control frame (`subscribed`, `pong`...), a frame of another run;
// - {action: "reconnect", reason}: an event further on (a gap: the server sends what lies
//   between on the next connection), or an error frame of a passing trouble;
// - {action: "fail", error}: a refusal that ends the watch (RunNotFound, HistoryGone...).
// A running run's refusal of a `last_event_index` beyond its last event, before anything was
// delivered (a `fromIndex` the run has not reached yet), reconnects from the run's last event
// instead; once an event was delivered, that refusal ends the watch (the server lost events
// the caller saw). `finished` becomes true after a terminal event (one below `fromIndex` too:
// the run ended before it), or after the last event of a finished run (`replay`'s
// `total_events`).
export class WatchCursor {
  constructor(runId, fromIndex = 0) {
    if (typeof runId !== "string" || runId === "") {
      throw new TypeError(`runId must be a non-empty string, got ${JSON.stringify(runId)}`);
    }
    if (!Number.isSafeInteger(fromIndex) || fromIndex < 0) {
      throw new RangeError(`fromIndex must be an integer, 0 or more, got ${fromIndex}`);
    }
    this.runId = runId;
    this.lastIndex = fromIndex - 1;
    this.endIndex = null; // the last index to deliver, once a replay tells it
    this.finished = false;
    this.resumeIndex = null; // sent instead of lastIndex until an event is delivered
    this.delivered = false;
  }

  // The command each connection sends first.
  reconnect() {
    const last = this.resumeIndex === null ? this.lastIndex : this.resumeIndex;
    return { action: "reconnect", run_id: this.runId, last_event_index: last >= 0 ? last : null };
  }

  receive(frame) {
    if (this.finished) return IGNORE;
    const kind = frame.event;
    if ((frame.run_id ?? this.runId) !== this.runId) return IGNORE;
    const index = eventIndex(frame);
    if (index !== null && typeof kind === "string") return this.#event(index, kind, frame);
    if (kind === "replay") return this.#endsAt(frame.total_events);
    if (kind === "auth_error") {
      return { action: "fail", error: new AuthenticationFailed(String(frame.error ?? "authentication failed")) };
    }
    if (kind === "error") return this.#error(String(frame.error ?? ""));
    return IGNORE;
  }

  #error(message) {
    const beyond = BEYOND_THE_RUN.exec(message);
    if (beyond && !this.delivered) {
      this.resumeIndex = Number(beyond[1]) - 1;
      return { action: "reconnect", reason: `the run has not reached event ${this.lastIndex + 1} yet` };
    }
    const error = refusal(message, this.runId);
    return error === null ? { action: "reconnect", reason: message } : { action: "fail", error };
  }

  #event(index, kind, frame) {
    if (index <= this.lastIndex) {
      this.finished = TERMINAL_EVENTS.has(kind); // the run ended before fromIndex
      return IGNORE;
    }
    if (index > this.lastIndex + 1) {
      return { action: "reconnect", reason: `event ${index} came after event ${this.lastIndex}: a gap` };
    }
    this.lastIndex = index;
    this.delivered = true;
    this.resumeIndex = null;
    if (TERMINAL_EVENTS.has(kind) || index === this.endIndex) this.finished = true;
    return { action: "deliver", event: frame };
  }

  #endsAt(count) {
    if (!Number.isSafeInteger(count)) {
      return {
        action: "fail",
        error: new ServerError(`the server sent an event count that is not an integer: ${JSON.stringify(count)}`),
      };
    }
    if (this.endIndex === null) {
      this.endIndex = count - 1;
      if (this.lastIndex >= this.endIndex) this.finished = true;
    }
    return IGNORE;
  }
}

function atLeast(name, value, least) {
  if (!(Number.isFinite(value) && value >= least)) {
    throw new RangeError(`backoff.${name} must be a number, ${least} or more, got ${value}`);
  }
}

// When a watch tries again, without I/O. The n-th failed attempt in a row (n = 0, 1, 2...) is
// followed by a wait drawn uniformly between half and the whole of min(ceiling, first *
// factor**n) milliseconds: 50-100 ms, 100-200 ms, ... up to 5-10 s with the defaults; the
// jitter keeps many pages that lost one server from coming back in step. `giveUpAfter`: the
// milliseconds of trouble after which the watch fails with ConnectionLost (null: never); the
// default, 5 minutes, rides out a server restart or a deploy.
export class Backoff {
  constructor({ first = 100, ceiling = 10_000, factor = 2, giveUpAfter = 300_000 } = {}) {
    atLeast("first", first, 1);
    atLeast("ceiling", ceiling, first);
    atLeast("factor", factor, 1);
    if (giveUpAfter !== null) atLeast("giveUpAfter", giveUpAfter, 0);
    Object.assign(this, { first, ceiling, factor, giveUpAfter });
    Object.freeze(this);
  }

  // The longest wait after failed attempt `attempt` (0: the first in a row).
  span(attempt) {
    let span = this.first;
    for (let n = 0; n < attempt && span < this.ceiling; n += 1) span *= this.factor;
    return Math.min(span, this.ceiling);
  }

  // `random`: a number in [0, 1), as Math.random gives.
  delay(attempt, random) {
    const span = this.span(attempt);
    return span / 2 + (random * span) / 2;
  }
}

// One watch's retries: `failed(now)` after a connection failed or dropped gives the wait before
// the next attempt, or null to give up; `answered()` when the server answers, which ends the
// trouble and starts the waits from `first` again. Trouble starts at the first failure.
export class Retrying {
  constructor(backoff, random = Math.random) {
    this.backoff = backoff;
    this.random = random;
    this.attempt = 0; // failed attempts in a row
    this.troubleSince = null;
  }

  failed(now) {
    if (this.troubleSince === null) this.troubleSince = now;
    const budget = this.backoff.giveUpAfter;
    const left = budget === null ? Infinity : this.troubleSince + budget - now;
    if (left <= 0) return null;
    const wait = this.backoff.delay(this.attempt, this.random());
    this.attempt += 1;
    return Math.min(wait, left);
  }

  answered() {
    this.attempt = 0;
    this.troubleSince = null;
  }
}

function quoted(text) {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

// One WebSocket connection to /workflows/ws: open, greeted by the server's `connected`, and
// authenticated when the client has a token (a browser cannot set an Authorization header on
// a WebSocket, so the token goes in the `authenticate` action). Frames are read in order with
// `receive()`; a closed or broken connection rejects it with ConnectionLost. Until it is greeted,
// the timeout bounds the wait; then a connection that goes quiet for a ping interval is sent a
// `ping`, and one quiet for another interval after it is taken as lost (a host that vanished,
// or a server that stopped, closes nothing).
class Session {
  static async open(url, token, timeout, pingInterval) {
    const session = new Session(url);
    let timer;
    const late = new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new ConnectionLost(`${url} did not greet within ${timeout} ms`)), timeout);
    });
    try {
      await Promise.race([session.#greet(token), late]);
    } catch (error) {
      session.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    if (session.#lost === null) {
      session.#pinger = setInterval(() => session.#checkAlive(pingInterval), pingInterval);
    }
    return session;
  }

  #url;
  #socket;
  #frames = [];
  #waiting = [];
  #lost = null;
  #heard = true;
  #pinged = false;
  #pinger = null; // once greeted

  constructor(url) {
    this.#url = url;
    this.#socket = new WebSocket(url);
    this.#socket.onmessage = (message) => this.#arrived(message.data);
    this.#socket.onclose = (closed) => {
      const why = closed.code === 1006
        ? `the connection to ${url} failed or broke`
        : `the server closed the connection with ${closed.code}${closed.reason ? ` (${closed.reason})` : ""}`;
      this.#end(new ConnectionLost(why));
    };
  }

  #arrived(data) {
    if (this.#lost !== null) return; // after close(): nobody reads this connection any more
    this.#heard = true;
    this.#pinged = false;
    if (typeof data !== "string") {
      this.#end(new ServerError("the server sent a binary frame on /workflows/ws"));
      return;
    }
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      this.#end(new ServerError(`the server sent a frame that is not JSON: ${quoted(data)}`));
      return;
    }
    if (frame === null || typeof frame !== "object" || Array.isArray(frame)) {
      this.#end(new ServerError(`the server sent a frame that is not a JSON object: ${quoted(data)}`));
      return;
    }
    const waiter = this.#waiting.shift();
    if (waiter) waiter.resolve(frame);
    else this.#frames.push(frame);
  }

  #checkAlive(pingInterval) {
    if (this.#heard) {
      this.#heard = false;
    } else if (!this.#pinged) {
      this.#pinged = true;
      this.send({ action: "ping" });
    } else {
      this.#end(new ConnectionLost(`${this.#url} did not answer a ping within ${pingInterval} ms`));
    }
  }

  #end(error) {
    if (this.#lost !== null) return;
    this.#lost = error;
    clearInterval(this.#pinger);
    this.#socket.close();
    for (const waiter of this.#waiting.splice(0)) waiter.reject(error);
  }

  send(command) {
    if (this.#lost === null && this.#socket.readyState === WebSocket.OPEN) {
      this.#socket.send(JSON.stringify(command));
    } // else: the close is on its way, and receive() will say so
  }

  // The next frame, a JSON object; rejects with why the connection ended.
  receive() {
    if (this.#frames.length > 0) return Promise.resolve(this.#frames.shift());
    if (this.#lost !== null) return Promise.reject(this.#lost);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  // Close the connection; frames that arrived and were not read yet are dropped.
  close() {
    this.#frames.length = 0;
    this.#end(new ConnectionLost("the connection was closed by the client"));
  }

  async #greet(token) {
    const greeting = await this.receive();
    if (greeting.event !== "connected") {
      throw new ServerError(`the server did not greet with 'connected', it sent ${quoted(JSON.stringify(greeting))}`);
    }
    if (token === null) {
      if (greeting.requires_auth) {
        throw new AuthenticationFailed("the server requires a token, and this client has none");
      }
      return;
    }
    this.send({ action: "authenticate", token });
    for (;;) {
      const answer = await this.receive();
      if (answer.event === "authenticated") return;
      if (answer.event === "auth_error") {
        throw new AuthenticationFailed(`the server refused the token: ${answer.error}`);
      }
    }
  }
}

// One run's events, each exactly once and in order, from `fromIndex` to the run's terminal
// event, live while it runs, resuming by itself (see WatchCursor, Backoff). It starts at once.
// Consume it either with `onEvent(event)` (called in order, synchronously per event) or as an
// async iterator (`for await (const event of watch)`: events wait in memory until taken), not
// both. `onStatus(status)` hears each change of the connection, `status.state` being
// "connecting", "live" (the server serves the watch), "reconnecting" (with `attempt`, 1 for
// the first retry in a row, `reason` and `retryIn` milliseconds), "ended" (the terminal event
// was delivered), "closed" (by `close()`) or "failed" (with `error`). `done` resolves when the
// watch ends or is closed, and rejects with the RuncastError that failed it (or with what
// `onEvent` threw). An event is the server's frame as it came (`event`, `event_index`,
// `run_id`, the event's own fields).
export class Watch {
  #cursor;
  #retrying;
  #open;
  #onEvent;
  #onStatus;
  #state = null;
  #session = null;
  #closed = false;
  #wake = null;
  #queue = [];
  #takers = [];
  #outcome = null; // once the watch is over: {error} or {error: null}

  constructor(cursor, open, { onEvent = null, onStatus = null, backoff }) {
    this.#cursor = cursor;
    this.#open = open;
    this.#onEvent = onEvent;
    this.#onStatus = onStatus;
    this.#retrying = new Retrying(backoff);
    this.runId = cursor.runId;
    this.done = this.#run();
    this.done.catch(() => {}); // a failure is also told to onStatus; `done` need not be awaited
  }

  // The index of the last event delivered (fromIndex - 1 before any).
  get lastIndex() {
    return this.#cursor.lastIndex;
  }

  // Stop watching: the connection closes, `done` resolves, an iteration ends.
  close() {
    if (this.#outcome !== null || this.#closed) return;
    this.#closed = true;
    this.#session?.close();
    this.#wake?.();
  }

  [Symbol.asyncIterator]() {
    if (this.#onEvent !== null) {
      throw new TypeError("this watch hands its events to onEvent; iterate a watch made without it");
    }
    return {
      next: () => this.#take(),
      return: async () => {
        this.close();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  #take() {
    if (this.#queue.length > 0) return Promise.resolve({ done: false, value: this.#queue.shift() });
    if (this.#outcome !== null) {
      return this.#outcome.error ? Promise.reject(this.#outcome.error) : Promise.resolve({ done: true, value: undefined });
    }
    return new Promise((resolve, reject) => this.#takers.push({ resolve, reject }));
  }

  #status(state, details = {}) {
    if (state === this.#state && state !== "reconnecting") return;
    this.#state = state;
    this.#onStatus?.({ state, runId: this.runId, ...details });
  }

  async #run() {
    let error = null;
    try {
      await this.#follow();
    } catch (failure) {
      error = failure instanceof Error ? failure : new RuncastError(String(failure));
    }
    this.#outcome = { error };
    for (const taker of this.#takers.splice(0)) {
      if (error) taker.reject(error);
      else taker.resolve({ done: true, value: undefined });
    }
    if (error) {
      this.#status("failed", { error });
      throw error;
    }
    this.#status(this.#closed ? "closed" : "ended");
  }

  async #follow() {
    this.#status("connecting");
    while (!this.#cursor.finished && !this.#closed) {
      let reason;
      try {
        this.#session = await this.#open();
        if (this.#closed) return;
        this.#session.send(this.#cursor.reconnect());
        reason = await this.#read(this.#session);
      } catch (error) {
        if (!(error instanceof ConnectionLost)) throw error;
        reason = error.message;
      } finally {
        this.#session?.close();
        this.#session = null;
      }
      if (this.#cursor.finished || this.#closed) return;
      const wait = this.#retrying.failed(Date.now());
      if (wait === null) {
        const budget = this.#retrying.backoff.giveUpAfter;
        throw new ConnectionLost(`gave up following run ${this.runId} after ${budget} ms without the server: ${reason}`);
      }
      this.#status("reconnecting", { attempt: this.#retrying.attempt, reason, retryIn: Math.round(wait) });
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  // Hand over the connection's events until the watch is finished (returns null) or the
  // connection should be dropped (returns why); throws what ends the watch.
  async #read(session) {
    for (;;) {
      const frame = await session.receive();
      const step = this.#cursor.receive(frame);
      if (step.action === "deliver") {
        this.#retrying.answered();
        this.#status("live");
        this.#deliver(step.event);
      } else if (step.action === "reconnect") {
        return step.reason;
      } else if (step.action === "fail") {
        throw step.error;
      } else if (OPENINGS.has(frame.event)) {
        this.#retrying.answered();
        this.#status("live");
      }
      if (this.#cursor.finished) return null;
    }
  }

  #deliver(event) {
    if (this.#onEvent !== null) {
      this.#onEvent(event);
      return;
    }
    const taker = this.#takers.shift();
    if (taker) taker.resolve({ done: false, value: event });
    else this.#queue.push(event);
  }
}

function httpError(status, detail, runId) {
  if (status === 401) return new AuthenticationFailed(`the server refused the token: ${detail}`);
  if (status === 404 && runId !== null) return new RunNotFound(runId, detail);
  if (status === 410 && runId !== null) return new HistoryGone(runId, detail);
  if (status >= 400 && status < 500) return new Refused(detail);
  return new ServerError(`${status}: ${detail}`);
}

// A client of one runcast server. `url`: the server's http:// or https:// base URL (default:
// the origin of the page); `token`: the server's --token, if it has one; `timeout`: the
// milliseconds each HTTP request, each connection's greeting and the answer to start and
// cancel may take; `backoff`: a Backoff's options (`first`, `ceiling`, `factor`,
// `giveUpAfter`); `pingInterval`: milliseconds of silence before a watch pings the server.
export class RuncastClient {
  constructor({ url = globalThis.location?.origin, token = null, timeout = 30_000, backoff = {}, pingInterval = 20_000 } = {}) {
    let parsed;
    try {
      parsed = new URL(url);
    } catch {
      throw new TypeError(`the server URL must be http://HOST:PORT or https://..., got ${JSON.stringify(url)}`);
    }
    if (!["http:", "https:"].includes(parsed.protocol)) {
      throw new TypeError(`the server URL must be http://HOST:PORT or https://..., got ${JSON.stringify(url)}`);
    }
    if (token !== null && (typeof token !== "string" || token === "")) {
      throw new TypeError("token must be a non-empty string, or null for a server without one");
    }
    this.url = parsed.origin + parsed.pathname.replace(/\/+$/, "");
    this.token = token;
    this.timeout = timeout;
    this.backoff = new Backoff(backoff);
    this.pingInterval = pingInterval;
    this.socketUrl = `${this.url.replace(/^http/, "ws")}/workflows/ws`;
  }

  #session() {
    return Session.open(this.socketUrl, this.token, this.timeout, this.pingInterval);
  }

  // Reads frames of `session` until `answer(frame)` returns something, within the timeout.
  async #exchange(command, what, answer) {
    const session = await this.#session();
    let timer;
    try {
      session.send(command);
      const late = new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new ConnectionLost(`no answer to ${what} within ${this.timeout} ms`)), this.timeout);
      });
      const answered = (async () => {
        for (;;) {
          const result = answer(await session.receive());
          if (result !== undefined) return result;
        }
      })();
      return await Promise.race([answered, late]);
    } finally {
      clearTimeout(timer);
      session.close();
    }
  }

  // Start a run of `workflowId`; it goes on after this resolves. Not retried: a connection lost
  // before the answer may or may not have started a run (ConnectionLost). Resolves to
  // {runId, workflowId, sessionId, started} (`started`: the WorkflowStarted event, index 0);
  // rejects with WorkflowNotFound, or Refused (the server starts no run now, and says why).
  start(workflowId, { message = "", sessionId = null, userId = null } = {}) {
    const command = { action: "start-workflow", workflow_id: workflowId, message };
    if (sessionId !== null) command.session_id = sessionId;
    if (userId !== null) command.user_id = userId;
    return this.#exchange(command, "start-workflow", (frame) => {
      if (frame.event === "error") {
        const problem = String(frame.error);
        throw refusal(problem) || new Refused(problem);
      }
      if (eventIndex(frame) === 0 && typeof frame.run_id === "string") {
        return { runId: frame.run_id, workflowId, sessionId: frame.session_id ?? null, started: frame };
      }
      return undefined;
    });
  }

  // Follow run `runId` from event `fromIndex` (see Watch).
  watch(runId, { fromIndex = 0, onEvent = null, onStatus = null } = {}) {
    const cursor = new WatchCursor(runId, fromIndex);
    return new Watch(cursor, () => this.#session(), { onEvent, onStatus, backoff: this.backoff });
  }

  // Ask the run to stop: it ends with WorkflowCancelled then WorkflowCompleted, both carrying
  // `reason`. Rejects with RunNotFound, or Refused for a run finished or already cancelling.
  cancel(runId, { reason = null } = {}) {
    const command = { action: "cancel-run", run_id: runId };
    if (reason !== null) command.reason = reason;
    return this.#exchange(command, "cancel-run", (frame) => {
      if (frame.event === "cancel_requested" && frame.run_id === runId) return null;
      if (frame.event === "error") {
        const problem = String(frame.error);
        throw refusal(problem, runId) || new Refused(problem);
      }
      return undefined;
    });
  }

  async #get(path, runId = null) {
    const headers = this.token === null ? {} : { Authorization: `Bearer ${this.token}` };
    let response;
    try {
      response = await fetch(`${this.url}${path}`, { headers, signal: AbortSignal.timeout(this.timeout) });
    } catch (error) {
      throw new ConnectionLost(`cannot reach ${this.url}: ${error.message}`);
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      if (response.ok) throw new ServerError(`GET ${path} answered something that is not JSON`);
    }
    if (!response.ok) {
      const detail = body !== null && typeof body === "object" && "detail" in body ? String(body.detail) : response.statusText;
      throw httpError(response.status, detail, runId);
    }
    return body;
  }

  // The newest `limit` runs (1 to 1000), of one `status` (RUNNING, COMPLETED, ERROR, CANCELLED)
  // if given: the server's JSON objects (run_id, workflow_id, status, event_count, ...).
  async listRuns({ limit = 100, status = null } = {}) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (status !== null) query.set("status", status);
    return (await this.#get(`/runs?${query}`)).runs;
  }

  getRun(runId) {
    return this.#get(`/runs/${encodeURIComponent(runId)}`, runId);
  }

  // The registered workflows: [{id, name, description}].
  workflows() {
    return this.#get("/workflows");
  }
}
