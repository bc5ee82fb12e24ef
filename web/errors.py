"""Every HTTP error the front end answers is JSON, `{"detail": "<what was wrong>"}`.

`problem()` makes such an answer for the routes' own refusals; `json_errors(app)` has Quart give
werkzeug's HTTP exceptions (an unknown route 404, a method the route does not take 405, a body
over Quart's `MAX_CONTENT_LENGTH` 413, the 500 of an unhandled exception...) the same shape
instead of an HTML page, keeping their status and headers (`Allow` for a 405); a route that
finds the store unreachable answers 503 naming its error, and one asked for a history that is
gone (`--retention`) answers 410. WebSocket
handshakes Quart refuses (an unknown path) get the same answer over the `websocket.http.response`
extension.
"""

from __future__ import annotations

from collections.abc import Mapping

from quart import Quart, Response, current_app, has_websocket_context, jsonify, request, websocket
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from actors.store import HistoryGone, StorageFailed


def problem(
    status: int, detail: str, headers: Mapping[str, str] | None = None
) -> tuple[Response, int]:
    response = jsonify({"detail": detail})
    response.headers.update(headers or {})
    return response, status


def _target() -> str:
    """The request being answered: its method and path, or the WebSocket handshake's path."""
    if has_websocket_context():
        return f"WebSocket {websocket.path}"
    return f"{request.method} {request.path}"


def detail_of(error: HTTPException) -> str:
    if isinstance(error, NotFound):
        return f"No route for {_target()}"
    if isinstance(error, MethodNotAllowed):
        allowed = ", ".join(sorted(error.valid_methods or ()))
        return f"{_target()}: the method is not allowed here; allowed: {allowed}"
    if isinstance(error, RequestEntityTooLarge):
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return f"The request body is larger than the limit of {limit} bytes"
    return str(error.description or error.name)


def json_errors(app: Quart) -> None:
    """Answer every werkzeug HTTP exception of `app` with a JSON `detail`."""

    @app.errorhandler(HTTPException)
    async def as_json(error: HTTPException) -> tuple[Response, int]:
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        return problem(error.code or 500, detail_of(error), headers)

    @app.errorhandler(StorageFailed)
    async def store_unreachable(error: StorageFailed) -> tuple[Response, int]:
        return problem(503, f"the store cannot be read, try again later: {error}")

    @app.errorhandler(HistoryGone)
    async def history_gone(error: HistoryGone) -> tuple[Response, int]:
        return problem(410, str(error))
