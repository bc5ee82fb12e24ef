"""HTTP routes over the runtime: health, workflows, runs, and Agno's cancel endpoint.

Every answer is JSON. Errors are `{"detail": "<what was wrong>"}` with 404 (unknown run or
workflow), 409 (run already finished) or 422 (a bad query parameter). `/health` is 200 with
`"store": "ok"`, or 503 with `"status": "failing"` and the store's error while its writes fail.

`GET /runs` answers a page of runs, newest first, and `next`: null, or when the page is full the
text (`web.run_cursor`) that, given back as `before`, answers the runs after it; runs created
meanwhile are newer, so paging repeats and skips none. It takes `limit` (ASCII digits, 1 to
1000), `status` (a run status, in any case), `workflow_id` (exact), `q` (the start of a run id)
and `before`, each at most once; the 422 names the parameter and what it accepts. `GET
/runs/counts` counts the store's runs by status."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify, request
from werkzeug.datastructures import MultiDict

from actors import RunStatus, Runtime, UnknownRun
from actors.store import RunCursor, RunRecord
from web.errors import problem
from web.run_cursor import BadCursor, cursor_text, parse_cursor

DEFAULT_LIST = 100
MAX_LIST = 1000
MAX_WORKFLOW_ID = 200  # characters
MAX_PREFIX = 100  # characters of `q`, the start of a run id
SHOWN_CHARACTERS = 40  # of a bad parameter's value, in its 422


class BadQuery(Exception):
    """A query parameter its route does not accept; the message names it and what is accepted."""


def shown(value: str) -> str:
    if len(value) <= SHOWN_CHARACTERS:
        return repr(value)
    return f"{value[:SHOWN_CHARACTERS]!r}... ({len(value)} characters)"


def single(args: MultiDict[str, str], name: str) -> str | None:
    """The value of query parameter `name`, None if absent; BadQuery if it is given twice."""
    values = args.getlist(name)
    if len(values) > 1:
        raise BadQuery(f"{name} must be given at most once, got {len(values)} values")
    return values[0] if values else None


def limit_of(args: MultiDict[str, str]) -> int:
    text = single(args, "limit")
    if text is None:
        return DEFAULT_LIST
    digits = text.lstrip("0")
    if not (
        text.isascii()
        and text.isdigit()
        and len(digits) <= len(str(MAX_LIST))
        and 1 <= int(digits or "0") <= MAX_LIST
    ):
        raise BadQuery(
            f"limit must be an integer from 1 to {MAX_LIST} in digits 0-9, got {shown(text)}"
        )
    return int(digits)


def status_of(args: MultiDict[str, str]) -> RunStatus | None:
    text = single(args, "status")
    if text is None:
        return None
    statuses = {status.value: status for status in RunStatus}
    if text.isascii() and text.upper() in statuses:
        return statuses[text.upper()]
    raise BadQuery(f"status must be one of {', '.join(statuses)} (any case), got {shown(text)}")


def text_of(args: MultiDict[str, str], name: str, most: int, what: str) -> str | None:
    """Parameter `name`, 1 to `most` characters, None if absent; `what` says what it is."""
    text = single(args, name)
    if text is not None and not 1 <= len(text) <= most:
        raise BadQuery(f"{name} must be {what}, 1 to {most} characters, got {shown(text)}")
    return text


def before_of(args: MultiDict[str, str]) -> RunCursor | None:
    text = single(args, "before")
    if text is None:
        return None
    try:
        return parse_cursor(text)
    except BadCursor:
        raise BadQuery(
            f"before must be the `next` of an earlier GET /runs answer, as it was, got {shown(text)}"
        ) from None


def run_json(record: RunRecord) -> dict[str, Any]:
    info = record.info
    return {
        "run_id": info.run_id,
        "workflow_id": info.workflow_id,
        "workflow_name": info.workflow_name,
        "session_id": info.session_id,
        "user_id": info.user_id,
        "input": info.message,
        "status": record.status.value,
        "event_count": record.event_count,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
        "node": record.node,
    }


def runs_blueprint(runtime: Runtime) -> Blueprint:
    api = Blueprint("runs", __name__)

    @api.get("/health")
    async def health() -> Response | tuple[Response, int]:
        failure = runtime.storage_failure
        if failure is None:
            return jsonify({"status": "healthy", "live_runs": runtime.live_runs, "store": "ok"})
        body = {"status": "failing", "live_runs": runtime.live_runs, "store": str(failure)}
        return jsonify(body), 503

    @api.get("/workflows")
    async def workflows() -> Response:
        return jsonify(
            [{"id": w.id, "name": w.name, "description": w.description} for w in runtime.catalog]
        )

    @api.get("/runs")
    async def list_runs() -> Response | tuple[Response, int]:
        args = request.args
        try:
            limit, status, before = limit_of(args), status_of(args), before_of(args)
            workflow_id = text_of(args, "workflow_id", MAX_WORKFLOW_ID, "a workflow id")
            prefix = text_of(args, "q", MAX_PREFIX, "the start of a run id")
        except BadQuery as bad:
            return problem(422, str(bad))
        records = await runtime.list_runs(
            limit, status, workflow_id=workflow_id, run_id_prefix=prefix, before=before
        )
        full = len(records) == limit  # then more may follow, from its last run on
        next_page = cursor_text(RunCursor.of(records[-1])) if full else None
        return jsonify({"runs": [run_json(r) for r in records], "next": next_page})

    @api.get("/runs/counts")
    async def count_runs() -> Response:
        counts = await runtime.count_runs()
        return jsonify({"counts": {status.value: count for status, count in counts.items()}})

    @api.get("/runs/<run_id>")
    async def get_run(run_id: str) -> Response | tuple[Response, int]:
        try:
            return jsonify(run_json(await runtime.get_run(run_id)))
        except UnknownRun as unknown:
            return problem(404, str(unknown))

    @api.post("/workflows/<workflow_id>/runs/<run_id>/cancel")
    async def cancel(workflow_id: str, run_id: str) -> Response | tuple[Response, int]:
        try:
            record = await runtime.get_run(run_id)
        except UnknownRun as unknown:
            return problem(404, str(unknown))
        if record.info.workflow_id != workflow_id:
            return problem(404, f"Run {run_id} not found in workflow {workflow_id}")
        outcome = await runtime.cancel(run_id, "cancelled over HTTP")
        if outcome.status.finished:
            return problem(409, f"Run {run_id} is already finished ({outcome.status.value})")
        return jsonify({"run_id": run_id, "status": "cancelling", "cancelled": outcome.cancelling})

    return api
