"""The browser rules of the routes Quart serves, by the server's `OriginPolicy`
(`web.origins`); the WebSocket routes, served in front of Quart (`web.app`), apply the same
policy themselves, so the handshakes Quart sees are those to paths it answers 404.

- A request or WebSocket handshake whose `Origin` the policy does not allow is refused with 403
  before anything else, the token included; one without an Origin (a script, a CLI) is served.
- CORS: an answer to an allowed origin names it in `Access-Control-Allow-Origin`, and every
  answer says `Vary: Origin`. A preflight (`OPTIONS` on a route) is answered 204 with the
  route's methods and the headers a page may send (`Authorization`, `Content-Type`, and
  `Last-Event-ID` for a script that resumes a run's event stream itself), without the
  token, since browsers send preflights without credentials.
- A POST must say `Content-Type: application/json` (else 415), so that a page cannot send one
  without a preflight. Only a POST with neither a body nor a content type (a cancel from
  `curl -X POST`) may leave it out: a browser sends such a request with its Origin, which the
  first rule has checked.

These run before the token check, so they are registered before it.
"""

from __future__ import annotations

from quart import Quart, Response, request, websocket

from web.errors import problem
from web.keep_alive import has_body
from web.origins import OriginPolicy, refusal

ALLOWED_HEADERS = "Authorization, Content-Type, Last-Event-ID"  # the last for web.sse
PREFLIGHT_MAX_AGE = "600"  # seconds a browser may reuse a preflight's answer
JSON = "application/json"


def guard(app: Quart, policy: OriginPolicy) -> None:
    """Register the rules of this module on `app`."""

    @app.before_request
    async def screen_request() -> Response | tuple[Response, int] | None:
        origin = request.headers.get("Origin")
        if origin is not None and not policy.allows(origin, request.scope.get("server")):
            return problem(403, refusal(origin))
        rule = request.url_rule
        if rule is None or request.routing_exception is not None:
            return None  # an unknown route or method: 404 or 405
        if request.method == "OPTIONS":
            methods = ", ".join(sorted(rule.methods or ()))
            return Response(
                b"",
                status=204,
                headers={
                    "Allow": methods,
                    "Access-Control-Allow-Methods": methods,
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                },
            )
        if request.method == "POST":
            content_type = request.headers.get("Content-Type")
            if content_type is None and has_body(request.scope["headers"]):
                return problem(415, f"A POST with a body needs Content-Type: {JSON}")
            if content_type is not None and request.mimetype != JSON:
                return problem(415, f"Content-Type must be {JSON}, got {content_type!r}")
        return None

    @app.after_request
    async def name_the_origin(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin is not None and policy.allows(origin, request.scope.get("server")):
            response.headers["Access-Control-Allow-Origin"] = origin
        response.vary.add("Origin")
        return response

    @app.before_websocket
    async def screen_handshake() -> tuple[Response, int] | None:
        origin = websocket.headers.get("Origin")
        if origin is not None and not policy.allows(origin, websocket.scope.get("server")):
            return problem(403, refusal(origin))
        return None
