"""The OpenAPI 3.1 document of the server's HTTP routes, as data: `openapi_document()`.

It describes what each route takes and every answer it gives, errors included (`{"detail":
...}`, with the status codes the route really answers), and is written here by hand rather than
generated from the routes: the routes validate their input with the one strict cattrs converter
(`actors.converter`), and this document describes that validation without taking part in it.
`tests/web/test_openapi.py` holds the two together: every route of the app is described with its
methods, and real answers of a real server match the schemas given for their status.

The document depends on one setting: with a token (`--token`), every operation but the open ones
(`/health`, this document, its `/docs` page, `/static/` files and the dashboard's `/` and
`/ui/`) requires the bearer scheme and
lists its 401. The WebSocket routes, which OpenAPI cannot describe, are summarised in the
description. `web.api_docs` serves the document at `/openapi.json`.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

Schema = dict[str, Any]

OPENAPI_VERSION = "3.1.0"
SECURITY_SCHEME = "bearer"
RUN_STATUSES = ["RUNNING", "COMPLETED", "ERROR", "CANCELLED"]
GRAPH_STATUSES = ["running", "completed", "failed", "cancelled"]
MAX_INDEX = 2**63 - 1  # the largest event index a client may name

DESCRIPTION = """\
runcast serves long-running workflow runs: every run has an append-only, gap-free, durable
history of events, watched live over WebSocket or Server-Sent Events, resumed from the last
index seen, and replayed in full once finished. This document describes the HTTP routes; the
README is the manual.

**Errors.** Every error of every route is JSON, `{"detail": "<what was wrong>"}`, never an HTML
page: 404 for an unknown route (`No route for GET /nope`) or resource, 405 for a method a route
does not take (with `Allow`), 413 for a body over 16 MiB, 415 for a POST whose body is not
declared `application/json`, 422 for bad input (the message names the field or parameter and what
it takes), 503 while the store cannot be read or written (the message names the store's error).
Request bodies are read strictly: an unknown field, a missing one or a value of the wrong type
is refused with 422, never coerced.

**Token.** A server started with `--token` wants `Authorization: Bearer <token>` (the scheme in
any case) on every request but those to `/health`, `/openapi.json`, `/docs`, `/static/`, the
dashboard's `/` and `/ui/`, and CORS preflights; without it, 401 with `WWW-Authenticate:
Bearer`. This document says so when the server that serves it has a token.

**Browsers.** A request whose `Origin` is not allowed by `--allowed-origins` is refused with 403
before anything else (by default the server's own loopback origins are allowed). Every route
answers a CORS preflight (`OPTIONS`) with 204, without the token, and every `GET` route answers
`HEAD` too.

**WebSocket routes** (OpenAPI does not describe WebSockets):
- `/workflows/ws`: the workflow protocol of Agno AgentOS. The client sends JSON commands with an
  `action`: `start-workflow` (`workflow_id`, `message`, `session_id`, `user_id`), `reconnect`
  (`run_id`, `last_event_index`: null or -1 for every event), `cancel-run` (`run_id`),
  `authenticate` (`token`), `ping`. The server sends `connected`, then the runs' events, each
  with its `event_index`, framed by `catch_up` / `subscribed` (a running run) or `replay` (a
  finished one), and `{"event": "error", "error": ...}` for a bad command, after which the socket
  stays usable.
- `/ws/graph/run/{graph_id}`: send `{"initial_state": {...}}`; the server streams the graph run
  (`connected`, `status`, `node_start`, `node_complete`, `transition`, `system`, `complete`, or
  `node_error` and `error`), then closes with 1000. With a token, the handshake needs the
  `Authorization` header.
"""


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def response(name: str) -> Schema:
    return {"$ref": f"#/components/responses/{name}"}


def obj(properties: Schema, *, optional: tuple[str, ...] = (), description: str = "") -> Schema:
    """A JSON object with exactly these properties, all required but `optional`."""
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def string(description: str = "", **more: Any) -> Schema:
    return {"type": "string", **({"description": description} if description else {}), **more}


def nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


def json_answer(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def problem(description: str) -> Schema:
    return json_answer(description, ref("Problem"))


def path_parameter(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}}


GRAPH_DEFINITION: Schema = {
    "name": string(),
    "nodes": {"type": "object", "additionalProperties": ref("NodeDefinition"),
              "description": "Nodes by name, in order; the start node is the first no edge "
              "points to. `END` is reserved."},
    "edges": {"type": "object", "additionalProperties": {"type": "string"},
              "description": "Plain edges: from node to node (or `END`).", "default": {}},
    "conditional_edges": {"type": "object", "additionalProperties": ref("ConditionalEdge"),
                          "description": "From node to a condition and its two targets; wins "
                          "over a plain edge.", "default": {}},
}

SCHEMAS: dict[str, Schema] = {
    "Problem": obj(
        {"detail": string("What was wrong, in one sentence.")},
        description="Every error of every route.",
    ),
    "Health": obj(
        {
            "status": string(enum=["healthy", "failing"]),
            "live_runs": {"type": "integer", "minimum": 0,
                          "description": "Runs live on this node."},
            "store": string("`ok`, or the store's error while its writes fail."),
        }
    ),
    "Metrics": obj(
        {
            "node": nullable(string("The node's id in a store several nodes share (Redis); null "
                                    "otherwise.")),
            "time": {"type": "number", "description": "The server's clock: seconds since the "
                     "Unix epoch."},
            **{name: {"type": "integer", "minimum": 0, "description": description}
               for name, description in [
                   ("live_runs", "Runs live on this node."),
                   ("runs_started", "Runs started (their first event durable)."),
                   ("events_appended", "Events appended (durable, then published)."),
                   ("subscriptions", "Follows opened (starts, reconnects, replays)."),
                   ("live_subscribers", "Live feeds of running runs."),
                   ("frames_sent", "WebSocket frames sent."),
                   ("websockets_opened", "WebSocket connections accepted."),
                   ("websockets_open", "WebSocket connections open."),
               ]},
            "runs_finished": obj(
                {status: {"type": "integer", "minimum": 0} for status in RUN_STATUSES[1:]},
                description="Runs finished on this node, by final status.",
            ),
            "store_commit_seconds": obj(
                {
                    "count": {"type": "integer", "minimum": 0},
                    "sum": {"type": "number", "minimum": 0},
                    "buckets": {
                        "type": "array",
                        "description": "`[le, cumulative count]` per bucket, `le` the bucket's "
                        "upper bound in seconds, `\"+Inf\"` for the last.",
                        "items": {"type": "array", "prefixItems": [
                            {"oneOf": [{"type": "number"}, {"const": "+Inf"}]},
                            {"type": "integer", "minimum": 0},
                        ], "minItems": 2, "maxItems": 2},
                    },
                },
                description="Time from an event's commit call until it is durable.",
            ),
            "cpu_seconds": nullable({"type": "number", "description": "The process's CPU time "
                                     "(null where the platform does not tell)."}),
            "resident_memory_bytes": nullable({"type": "number", "description": "The "
                                               "process's resident memory."}),
        },
        description="The figures of `/metrics`, from the same counters.",
    ),
    "Workflow": obj({"id": string(), "name": string(), "description": string()}),
    "Run": obj(
        {
            "run_id": string(),
            "workflow_id": string("The workflow's id; a graph run's is its graph id."),
            "workflow_name": string(),
            "session_id": string(),
            "user_id": nullable(string()),
            "input": string("The message the run was started with (a graph run's initial state "
                            "as JSON text)."),
            "status": string(enum=RUN_STATUSES),
            "event_count": {"type": "integer", "minimum": 0},
            "created_at": {"type": "number", "description": "Seconds since the Unix epoch."},
            "finished_at": nullable({"type": "number", "description": "Seconds since the Unix "
                                     "epoch; null while running."}),
            "node": nullable(string("The node that owns the run, in a store several nodes share "
                                    "(Redis); null otherwise.")),
        }
    ),
    "RunList": obj(
        {
            "runs": {"type": "array", "items": ref("Run"),
                     "description": "Newest first: by `created_at`, then `run_id`, descending."},
            "next": nullable(string("When the page is full (more runs may follow): give it as "
                                    "`before` for the next page. Opaque; null otherwise.")),
        }
    ),
    "RunCounts": obj(
        {"counts": obj({status: {"type": "integer", "minimum": 0} for status in RUN_STATUSES},
                       description="The store's runs by status, every status present.")}
    ),
    "CancelAnswer": obj(
        {
            "run_id": string(),
            "status": string(const="cancelling"),
            "cancelled": {
                "type": "boolean",
                "description": "Whether this request asked for the cancel: false when the run "
                               "was already being cancelled.",
            },
        }
    ),
    "NodeDefinition": obj(
        {
            "function": string("A registered tool (`GET /graph/tools`)."),
            "params": {"type": "object", "description": "Keyword arguments of the tool, checked "
                       "against its signature.", "default": {}},
        },
        optional=("params",),
    ),
    "ConditionalEdge": obj(
        {
            "condition": string("An expression over the state: comparisons, `and` / `or` / "
                                "`not`, numbers, strings, `true` / `false` / `null`, state keys "
                                "(dotted for nested objects). Never evaluated as Python."),
            "true": string("The next node (or `END`) when the condition holds."),
            "false": string("The next node (or `END`) otherwise."),
        }
    ),
    "GraphDefinition": obj(GRAPH_DEFINITION, optional=("edges", "conditional_edges")),
    "StoredGraph": obj(
        {"graph_id": string(), **GRAPH_DEFINITION},
        description="A graph's definition as created, its defaults filled in, with its id.",
    ),
    "GraphCreated": obj(
        {
            "graph_id": string(),
            "name": string(),
            "start_node": string(),
            "message": string(const="Graph created successfully"),
        }
    ),
    "Tool": obj(
        {
            "name": string(),
            "description": string("The first line of the tool's docstring."),
            "params": {"type": "array", "items": {"type": "string"},
                       "description": "The keyword parameters a node may give it."},
        }
    ),
    "ToolList": obj({"tools": {"type": "array", "items": ref("Tool")}}),
    "GraphRunRequest": obj(
        {
            "graph_id": string(),
            "initial_state": {
                "type": "object",
                "default": {},
                "description": "The state the run starts from. `max_iterations` (a positive "
                "integer, default 10) bounds the passes of any one node; it may not exceed the "
                "server's `--graph-max-iterations`.",
            },
        },
        optional=("initial_state",),
    ),
    "LogEntry": obj(
        {
            "node": string("The node, or `SYSTEM` for the iteration limit."),
            "status": string(enum=["completed", "failed", "terminated"]),
            "timestamp": string("ISO 8601, UTC.", format="date-time"),
            "details": {"type": "object", "description": "`function` and `duration_ms`; "
                        "`error` when the node failed; `reason` and `node` at the limit."},
        }
    ),
    "GraphRunResult": obj(
        {
            "run_id": string(),
            "status": string(enum=GRAPH_STATUSES),
            "current_node": nullable(string("`END` once completed.")),
            "final_state": {"type": "object"},
            "execution_log": {"type": "array", "items": ref("LogEntry")},
            "error": string("Why the run failed or was cancelled."),
        },
        optional=("error",),
    ),
    "GraphRunState": obj(
        {
            "run_id": string(),
            "status": string(enum=GRAPH_STATUSES),
            "current_node": nullable(string()),
            "state": {"type": "object", "description": "The state so far."},
            "execution_log": {"type": "array", "items": ref("LogEntry")},
            "error": string("Why the run failed or was cancelled."),
        },
        optional=("error",),
    ),
    "GraphStarted": obj(
        {
            "run_id": string(),
            "message": string(const="Workflow started in background"),
            "status_endpoint": string("`/graph/state/<run_id>`."),
        }
    ),
    "BackgroundStatus": obj(
        {
            "run_id": string(),
            "task_status": string(enum=GRAPH_STATUSES),
            "workflow_status": string(enum=GRAPH_STATUSES),
            "current_node": nullable(string()),
            "error": string("Present when the run failed."),
        },
        optional=("error",),
    ),
    "BackgroundNotFound": obj(
        {"run_id": string(), "task_status": string(const="not_found"), "detail": string()}
    ),
}

RESPONSES: dict[str, Schema] = {
    "Unauthorized": {
        **problem("No `Authorization: Bearer <token>` with the server's token."),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}},
    },
    "Forbidden": problem("The request's `Origin` is not allowed by `--allowed-origins`."),
    "NotFound": problem("No such resource."),
    "Gone": problem("The run's history is past the store's `--retention` (Redis stores)."),
    "TooLarge": problem("The request body is over 16 MiB."),
    "UnsupportedMediaType": problem("A body that is not declared `application/json`."),
    "Unprocessable": problem("Bad input: the message names the field or parameter."),
    "Unavailable": problem("The store cannot be read (or, for a new run or graph, written), or "
                           "the server is shutting down; the message says which."),
}


def operation(
    operation_id: str,
    summary: str,
    answers: dict[str, Schema],
    *,
    tag: str,
    token_required: bool,
    open_route: bool = False,
    description: str = "",
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
) -> Schema:
    """One operation; every one may answer 403 (Origin), and, with a token, every one but the
    open routes 401."""
    responses = dict(answers)
    responses["403"] = response("Forbidden")
    if token_required and not open_route:
        responses["401"] = response("Unauthorized")
    described: Schema = {"operationId": operation_id, "tags": [tag], "summary": summary}
    if description:
        described["description"] = description
    if parameters:
        described["parameters"] = parameters
    if body is not None:
        described["requestBody"] = {
            "required": True, "content": {"application/json": {"schema": body}}
        }
        responses["413"] = response("TooLarge")
        responses["415"] = response("UnsupportedMediaType")
    if token_required and open_route:
        described["security"] = []
    described["responses"] = dict(sorted(responses.items()))
    return described


def paths(token_required: bool) -> dict[str, Schema]:
    def op(operation_id: str, summary: str, answers: dict[str, Schema], **more: Any) -> Schema:
        return operation(operation_id, summary, answers, token_required=token_required, **more)

    run_id = path_parameter("run_id", "The run's id.")
    graph_id = path_parameter("graph_id", "The graph's id, as `POST /graph/create` gave it.")
    unavailable = {"503": response("Unavailable")}
    stream_headers = {
        "Cache-Control": {"schema": {"type": "string", "const": "no-cache"}},
        "X-Accel-Buffering": {"schema": {"type": "string", "const": "no"}},
    }
    events_parameters = [
        run_id,
        {"name": "from", "in": "query", "required": False,
         "description": "The index of the first event to send (default 0); given at most once.",
         "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INDEX}},
        {"name": "Last-Event-ID", "in": "header", "required": False,
         "description": "The last index seen: the stream starts after it, and it wins over "
         "`from` (an EventSource sends it when it reconnects).",
         "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INDEX}},
    ]
    events_answers: dict[str, Schema] = {
        "200": {
            "description": "The stream, until the run's terminal event and `end`.",
            "headers": stream_headers,
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        "204": {"description": "The run is finished and nothing is owed from this point (an "
                               "EventSource stops reconnecting)."},
        "404": response("NotFound"),
        "422": response("Unprocessable"),
        **unavailable,
    }
    events_description = (
        "Server-Sent Events. Each of the run's events is a default event whose `id` is its "
        "`event_index` and whose `data` is the event's JSON frame, as the WebSocket sends it. "
        "The control frames come as named events without an id: `replay` (a finished run), "
        "`catch_up` and `subscribed` (a running one); after the terminal event comes `end`, and "
        "a stream that cannot go on (the run is lost, the store cannot be read, the history is "
        "past `--retention`) ends with `run_error`. Comments (`: keep-alive`) are sent "
        "while nothing else is. The stream starts after `Last-Event-ID`, else at `from`, else "
        "at 0; 422 for an index that is not one, or beyond the run's events."
    )
    return {
        "/health": {
            "get": op(
                "getHealth", "The node's health",
                {"200": json_answer("The store can write.", ref("Health")),
                 "503": json_answer("The store's writes fail (`status` `failing`, `store` its "
                                    "error).", ref("Health"))},
                tag="server", open_route=True,
            )
        },
        "/metrics": {
            "get": op(
                "getMetrics", "Prometheus metrics",
                {"200": {"description": "The Prometheus text format: runs started and finished, "
                         "live runs, events appended, subscriptions, live subscribers, WebSocket "
                         "frames and connections, store commit times, process CPU and memory.",
                         "content": {"text/plain": {"schema": {"type": "string"}}}}},
                tag="server",
            )
        },
        "/metrics.json": {
            "get": op(
                "getMetricsJson", "The metrics as JSON",
                {"200": json_answer("The figures of `/metrics`, from the same counters, with "
                                    "the node's id and the server's time.", ref("Metrics"))},
                tag="server",
            )
        },
        "/workflows": {
            "get": op(
                "listWorkflows", "The registered workflows",
                {"200": json_answer("Every workflow the server runs.",
                                    {"type": "array", "items": ref("Workflow")})},
                tag="runs",
            )
        },
        "/runs": {
            "get": op(
                "listRuns", "List runs",
                {"200": json_answer("The runs, newest first.", ref("RunList")),
                 "422": response("Unprocessable"), **unavailable},
                tag="runs",
                parameters=[
                    {"name": "limit", "in": "query", "required": False,
                     "description": "How many, 1 to 1000 in ASCII digits (default 100); given at "
                     "most once.", "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                                              "default": 100}},
                    {"name": "status", "in": "query", "required": False,
                     "description": "Only runs of this status, in any case; given at most once.",
                     "schema": {"type": "string", "enum": RUN_STATUSES}},
                    {"name": "workflow_id", "in": "query", "required": False,
                     "description": "Only runs of this workflow (exactly; a graph run's is its "
                     "graph id); given at most once.",
                     "schema": {"type": "string", "minLength": 1, "maxLength": 200}},
                    {"name": "q", "in": "query", "required": False,
                     "description": "Only runs whose `run_id` starts with this text; given at "
                     "most once.", "schema": {"type": "string", "minLength": 1, "maxLength": 100}},
                    {"name": "before", "in": "query", "required": False,
                     "description": "The `next` of an earlier answer, as it was: the runs after "
                     "that page (runs created since are newer, so none repeats or is skipped); "
                     "given at most once.", "schema": {"type": "string"}},
                ],
            )
        },
        "/runs/counts": {
            "get": op(
                "countRuns", "Count runs by status",
                {"200": json_answer("The store's runs by status.", ref("RunCounts")),
                 **unavailable},
                tag="runs",
            )
        },
        "/runs/{run_id}": {
            "get": op(
                "getRun", "One run",
                {"200": json_answer("The run.", ref("Run")), "404": response("NotFound"),
                 **unavailable},
                tag="runs", parameters=[run_id],
            )
        },
        "/runs/{run_id}/events": {
            "get": op(
                "streamRunEvents", "Follow a run's events (Server-Sent Events)", events_answers,
                tag="runs", parameters=events_parameters, description=events_description,
            ),
            "head": op(
                "checkRunEvents", "Check a run's event stream without streaming it",
                {"200": {"description": "The stream would start (its headers, no body).",
                         "headers": stream_headers},
                 **{status: events_answers[status] for status in ("204", "404", "422", "503")}},
                tag="runs", parameters=events_parameters,
            ),
        },
        "/workflows/{workflow_id}/runs/{run_id}/cancel": {
            "post": op(
                "cancelRun", "Cancel a run",
                {"200": json_answer("The run is being cancelled: it ends with "
                                    "`WorkflowCancelled`, then `WorkflowCompleted`.",
                                    ref("CancelAnswer")),
                 "404": problem("No such run, or not a run of that workflow."),
                 "409": problem("The run is already finished."),
                 "415": response("UnsupportedMediaType"), **unavailable},
                tag="runs",
                description="Takes no body; a body, if sent, must be declared "
                            "`application/json`.",
                parameters=[path_parameter("workflow_id", "The run's workflow."), run_id],
            )
        },
        "/graph/create": {
            "post": op(
                "createGraph", "Create a graph",
                {"200": json_answer("The graph is saved in the store.", ref("GraphCreated")),
                 "422": problem("The body is not JSON, or the graph is invalid: the message "
                                "names the field or node."),
                 "503": problem("The graph could not be saved.")},
                tag="graphs", body=ref("GraphDefinition"),
            )
        },
        "/graph/tools": {
            "get": op(
                "listGraphTools", "The registered graph tools",
                {"200": json_answer("Every tool a node may use.", ref("ToolList"))},
                tag="graphs",
            )
        },
        "/graph/{graph_id}": {
            "get": op(
                "getGraph", "A graph's definition",
                {"200": json_answer("The definition as created.", ref("StoredGraph")),
                 "404": response("NotFound"), **unavailable},
                tag="graphs", parameters=[graph_id],
            )
        },
        "/graph/run": {
            "post": op(
                "runGraph", "Run a graph and wait for its end",
                {"200": json_answer("The run's end.", ref("GraphRunResult")),
                 "404": problem("No such graph."),
                 "422": problem("The body is not JSON or not a run request, the initial state "
                                "is refused, or the graph can no longer run."),
                 "503": problem("The server is shutting down, or the store cannot write (the "
                                "run was refused, or lost).")},
                tag="graphs", body=ref("GraphRunRequest"),
            )
        },
        "/graph/run/background": {
            "post": op(
                "startGraphRun", "Start a graph run",
                {"200": json_answer("The run is started.", ref("GraphStarted")),
                 "404": problem("No such graph."),
                 "422": problem("The body is not JSON or not a run request, the initial state "
                                "is refused, or the graph can no longer run."),
                 "503": problem("The server is shutting down, or the store cannot write.")},
                tag="graphs", body=ref("GraphRunRequest"),
            )
        },
        "/graph/background/{run_id}/status": {
            "get": op(
                "getGraphRunStatus", "A graph run's status",
                {"200": json_answer("The run's status.", ref("BackgroundStatus")),
                 "404": json_answer("No graph run of that id.", ref("BackgroundNotFound")),
                 "410": response("Gone"), **unavailable},
                tag="graphs", parameters=[run_id],
            )
        },
        "/graph/state/{run_id}": {
            "get": op(
                "getGraphRunState", "A graph run's state",
                {"200": json_answer("The run as it is now, live while it runs.",
                                    ref("GraphRunState")),
                 "404": problem("No graph run of that id."),
                 "410": response("Gone"), **unavailable},
                tag="graphs", parameters=[run_id],
            )
        },
        "/static/{name}": {
            "get": op(
                "getStaticFile", "A browser file: the JavaScript client, its example page, "
                "the dashboard's files",
                {"200": {"description": "The file, with a Content-Security-Policy.",
                         "content": {media: {"schema": {"type": "string"}} for media in
                                     ("text/javascript", "text/html", "text/css",
                                      "image/svg+xml")}},
                 "404": response("NotFound")},
                tag="documents", open_route=True,
                parameters=[path_parameter("name", "The file's path under `web/static/`, e.g. "
                                           "`runcast.js`, `dashboard/index.html`.")],
            )
        },
        "/": {
            "get": op(
                "getRoot", "Where a browser finds the dashboard",
                {"302": {"description": "To `/ui/`, the dashboard.",
                         "headers": {"Location": {"schema": {"type": "string",
                                                             "const": "/ui/"}}}}},
                tag="documents", open_route=True,
            )
        },
        "/ui/": {
            "get": op(
                "getDashboard", "The dashboard's page",
                {"200": {"description": "`/static/dashboard/index.html`, with the headers of "
                         "`/static/` files; its scripts and styles are under "
                         "`/static/dashboard/`. `/ui` redirects here.",
                         "content": {"text/html": {"schema": {"type": "string"}}}}},
                tag="documents", open_route=True,
            )
        },
        "/openapi.json": {
            "get": op(
                "getOpenApiDocument", "This document",
                {"200": {"description": "The OpenAPI document.",
                         "content": {"application/json": {"schema": {"type": "object"}}}}},
                tag="documents", open_route=True,
            )
        },
        "/docs": {
            "get": op(
                "getDocsPage", "This document as a page (Swagger UI)",
                {"200": {"description": "The page; its scripts and styles are served by this "
                         "server under `/docs/`.",
                         "content": {"text/html": {"schema": {"type": "string"}}}}},
                tag="documents", open_route=True,
            )
        },
        "/docs/{name}": {
            "get": op(
                "getDocsFile", "A file of the `/docs` page",
                {"200": {"description": "The file.",
                         "content": {media: {"schema": {"type": "string"}} for media in
                                     ("text/javascript", "text/css", "image/png")}},
                 "404": response("NotFound")},
                tag="documents", open_route=True,
                parameters=[path_parameter("name", "The file's name.")],
            )
        },
    }


def openapi_document(*, token_required: bool) -> Schema:
    """The document of a server that has a token (`token_required`) or has none."""
    components: Schema = {"schemas": SCHEMAS, "responses": RESPONSES}
    document: Schema = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "runcast",
            "version": version("runcast"),
            "description": DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": [
            {"name": "runs", "description": "Workflows and their runs."},
            {"name": "graphs", "description": "The graph engine: graphs of tools, and their runs "
             "(runs like any other)."},
            {"name": "server", "description": "Health and metrics."},
            {"name": "documents", "description": "Files that hold no data: open without the "
             "token."},
        ],
        "paths": paths(token_required),
        "components": components,
    }
    if token_required:
        components["securitySchemes"] = {
            SECURITY_SCHEME: {"type": "http", "scheme": "bearer",
                              "description": "The server's `--token`."}
        }
        document["security"] = [{SECURITY_SCHEME: []}]
    return document
