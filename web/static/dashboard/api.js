// api.js: owns the dashboard's connection to its server: the runcast.js client (watch, start,
// cancel), rebuilt with the token when the server asks for one, and the HTTP routes runcast.js
// does not cover (GET /runs with filters and paging, /runs/counts, /metrics.json, /graph/...).
// A 401 asks for the token (token.js) and tries again with it.

import { ConnectionLost, Refused, RuncastClient, ServerError } from "/static/runcast.js";
import { askForToken, storedToken } from "./token.js";

const TIMEOUT = 15_000;

// A watch pings a server silent for 5 s and takes one silent 5 s more as gone: the page says
// "reconnecting…" within 10 s of a network that dropped without closing anything.
function clientWith(token) {
  return new RuncastClient({ token, timeout: TIMEOUT, pingInterval: 5_000 });
}

let client = clientWith(storedToken());

export function runcast() {
  return client;
}

// The server refused `refusedToken` (null: none): ask for the token, which the client uses
// from now on; unless another caller has already been given a new one since.
export async function authenticate(reason, refusedToken) {
  if (client.token !== refusedToken) return client;
  client = clientWith(await askForToken(reason));
  return client;
}

export async function request(method, path, body = undefined) {
  for (;;) {
    const token = client.token;
    const headers = {};
    if (token !== null) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT),
      });
    } catch (error) {
      throw new ConnectionLost(`cannot reach the server: ${error.message}`);
    }
    if (response.status === 401) {
      await authenticate(token === null ? "The server needs a token." : "The server refused the token.", token);
      continue;
    }
    const answer = await response.json().catch(() => null);
    if (response.ok) return answer;
    const detail = answer?.detail ?? response.statusText;
    throw response.status >= 500 ? new ServerError(`${response.status}: ${detail}`) : new Refused(detail);
  }
}

export const getJSON = (path) => request("GET", path);
export const postJSON = (path, body) => request("POST", path, body);
