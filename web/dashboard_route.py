"""`GET /` and `GET /ui/`: where a browser finds the dashboard.

`/` redirects (302) to `/ui/`, and `/ui` to `/ui/` (werkzeug's redirect of a route's path
without its trailing slash); `/ui/` answers `web/static/dashboard/index.html` exactly as
`/static/dashboard/index.html` is answered (`web.static_files`: its content type, `nosniff`,
`no-cache`, its Content-Security-Policy); the page loads its scripts and styles from
`/static/dashboard/` by absolute paths, the same from either address. Like `/static/`, these
hold no data and need no token (`web.app`); what the page then asks for does.
"""

from __future__ import annotations

from quart import Blueprint, Response

from web.static_files import static_response

DASHBOARD_PATH = "/ui/"
DASHBOARD_PAGE = "dashboard/index.html"  # under web/static/
UNGUARDED = frozenset({"/", "/ui", DASHBOARD_PATH})  # the paths that need no token


def dashboard_blueprint() -> Blueprint:
    dashboard = Blueprint("dashboard", __name__)

    @dashboard.get("/")
    async def root() -> Response:
        return Response("", 302, {"Location": DASHBOARD_PATH})  # no body to describe

    @dashboard.get(DASHBOARD_PATH)
    async def page() -> Response:
        return await static_response(DASHBOARD_PAGE)

    return dashboard
