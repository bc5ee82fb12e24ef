"""HTTP routes over the runtime: health, workflows, runs, and Agno's cancel endpoint.

Every answer is JSON. Errors are `{"detail": "<what was wrong>"}` with 404 (unknown run or
workflow), 409 (run already finished) or 422 (a bad query parameter).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify, request

from actors import RunStatus, Runtime, UnknownRun
from actors.store import RunRecord

MAX_LIST = 1000


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
    }


def problem(status: int, detail: str) -> tuple[Response, int]:
    return jsonify({"detail": detail}), status


def runs_blueprint(runtime: Runtime) -> Blueprint:
    api = Blueprint("runs", __name__)

    @api.get("/health")
    async def health() -> Response:
        return jsonify({"status": "healthy", "live_runs": runtime.live_runs})

    @api.get("/workflows")
    async def workflows() -> Response:
        return jsonify(
            [{"id": w.id, "name": w.name, "description": w.description} for w in runtime.catalog]
        )

    @api.get("/runs")
    async def list_runs() -> Response | tuple[Response, int]:
        raw_limit = request.args.get("limit", "100")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIST:
            return problem(422, f"limit must be an integer from 1 to {MAX_LIST}, got {raw_limit!r}")
        raw_status = request.args.get("status")
        status = None
        if raw_status is not None:
            try:
                status = RunStatus(raw_status.upper())
            except ValueError:
                names = ", ".join(s.value for s in RunStatus)
                return problem(422, f"status must be one of {names}, got {raw_status!r}")
        records = await runtime.list_runs(int(raw_limit), status)
        return jsonify({"runs": [run_json(r) for r in records]})

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
