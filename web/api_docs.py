"""`GET /openapi.json` (the document of `web.openapi`) and `GET /docs`, a page that renders it
with Swagger UI, all served by this server: nothing is fetched from elsewhere at run time.

Swagger UI's files come from the `swagger-ui-py` package (its `static/` folder, Swagger UI 5);
`/docs/<name>` serves the few the page uses, and `runcast-docs.js`, this module's own script,
which starts Swagger UI on `/openapi.json` (as a file of its own: the page's
Content-Security-Policy allows scripts and styles of this server only, no inline script). Each
file has its content type set here, `X-Content-Type-Options: nosniff` and `Cache-Control:
no-cache`; the page's policy lets it connect to this server only, which "Try it out" does.

The document and its page describe the routes and act on nothing, so they need no token
(`describes()`, which `web.app` asks), as `/health` does not; the routes they describe do, and the
page's Authorize button takes it. The `--allowed-origins` policy applies as to every route.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import orjson
from quart import Blueprint, Response, send_from_directory
from werkzeug.exceptions import NotFound

from web.openapi import openapi_document

DOCUMENT_PATH = "/openapi.json"
DOCS_PATH = "/docs"
SWAGGER_UI = Path(str(files("swagger_ui"))) / "static"
JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"
VENDORED = {  # Swagger UI's files the page uses, by name in SWAGGER_UI
    "swagger-ui-bundle.js": JS,
    "swagger-ui.css": CSS,
    "index.css": CSS,
    "favicon-32x32.png": "image/png",
}
INITIALIZER = "runcast-docs.js"
# img-src data: for the icons Swagger UI's stylesheet holds as data: URLs
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>runcast API</title>
<link rel="stylesheet" href="{DOCS_PATH}/swagger-ui.css">
<link rel="stylesheet" href="{DOCS_PATH}/index.css">
<link rel="icon" type="image/png" href="{DOCS_PATH}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{DOCS_PATH}/swagger-ui-bundle.js"></script>
<script src="{DOCS_PATH}/{INITIALIZER}"></script>
</body>
</html>
"""

# validatorUrl null: Swagger UI would otherwise send the document to an online validator
INITIALIZER_SCRIPT = f""""use strict";
window.ui = SwaggerUIBundle({{
  url: "{DOCUMENT_PATH}",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
}});
"""


def describes(path: str) -> bool:
    """Whether `path` is the document, its page, or a file of the page: open without a token."""
    return path in (DOCUMENT_PATH, DOCS_PATH) or path.startswith(f"{DOCS_PATH}/")


def with_headers(response: Response, content_type: str) -> Response:
    response.headers["Content-Type"] = content_type
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def docs_blueprint(*, token_required: bool) -> Blueprint:
    """The routes, serving the document of a server that has a token or has none."""
    document = orjson.dumps(openapi_document(token_required=token_required))
    api = Blueprint("api_docs", __name__)

    @api.get(DOCUMENT_PATH)
    async def openapi() -> Response:
        return with_headers(Response(document), "application/json")

    @api.get(DOCS_PATH)
    async def page() -> Response:
        return with_headers(Response(PAGE), "text/html; charset=utf-8")

    @api.get(f"{DOCS_PATH}/<name>")
    async def page_file(name: str) -> Response:
        if name == INITIALIZER:
            return with_headers(Response(INITIALIZER_SCRIPT), JS)
        content_type = VENDORED.get(name)
        if content_type is None:
            raise NotFound()
        return with_headers(await send_from_directory(SWAGGER_UI, name), content_type)

    return api
