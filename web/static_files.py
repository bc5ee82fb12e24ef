"""`GET /static/<name>`: the browser files of `web/static/` (`runcast.js`, the JavaScript
client, the example page that uses it, and the dashboard's files under `dashboard/`), as they
are on disk: no build step.

Only files of the kinds in `CONTENT_TYPES` are served, each with its content type set here
(never guessed from the machine's `mime.types`), `X-Content-Type-Options: nosniff`,
`Cache-Control: no-cache` (a browser revalidates, so a new server version is picked up), and a
Content-Security-Policy that lets a page load scripts, styles and images of this server only and
connect to this server only (`connect-src 'self'`: its HTTP routes and WebSockets). Anything
else, a path outside the folder included, is 404. These files hold no data, so they need no
token (`web.app`); the `--allowed-origins` policy applies to them as to every route.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from quart import Blueprint, Response, send_from_directory
from werkzeug.exceptions import NotFound

STATIC_FOLDER = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/static/"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def static_blueprint() -> Blueprint:
    files = Blueprint("static_files", __name__)

    @files.get(f"{STATIC_PREFIX}<path:name>")
    async def static_file(name: str) -> Response:
        return await static_response(name)

    return files


async def static_response(name: str) -> Response:
    """The file `name` (a path under `web/static/`, subfolders included) with its headers; 404
    (werkzeug's NotFound) for a kind of file not in `CONTENT_TYPES`, or no such file."""
    content_type = CONTENT_TYPES.get(PurePosixPath(name).suffix)
    if content_type is None:
        raise NotFound()
    response = await send_from_directory(STATIC_FOLDER, name)
    response.headers["Content-Type"] = content_type
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    response.headers.pop("Expires", None)  # Quart's default, 12 hours, says otherwise
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
