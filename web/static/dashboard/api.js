// api.js: owns the dashboard's connection to its server: the runcast.js client (watch, start,
// cancel), rebuilt with the token when the server asks for one, and the HTTP routes runcast.js
// does not cover (GET /runs with filters and paging, /runs/counts, /metrics.json, /graph/...).
// A 401 asks for the token (token.js) and tries again with it.

import { AuthenticationFailed, ConnectionLost, Refused, RuncastClient, ServerError } from "/static/runcast.js";
import { askForToken, storedToken } from "./token.js";

const TIMEOUT = 15_000;

let client = new RuncastClient({ token: storedToken(), timeout: TIMEOUT, pingInterval: 5_000 });

export function runcast() {
  return client;
}

// Ask for the token (a refused one is forgotten): the client uses it from now on.
export async function authenticate(reason) {
  const token = await askForToken(reason);
  client = new RuncastClient({ token, timeout: TIMEOUT, pingInterval: 5_000 });
  return client;
}

export async function request(method, path, body = undefined) {
  for (;;) {
    const headers = {};
    if (client.token !== null) headers.Authorization = `Bearer ${client.token}`;
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
      await authenticate(client.token === null ? "The server needs a token." : "The server refused the token.");
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
