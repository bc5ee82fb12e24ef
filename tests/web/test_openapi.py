"""`/openapi.json` and `/docs` (web/openapi.py, web/api_docs.py): the document is valid OpenAPI
3.1 and describes every HTTP route of the app with its methods; it tells the truth, checked on a
real server: each real answer, errors included (503 from a Redis store killed under the
server, 410 from its `--retention`), has a status the document lists for its operation, the
content type listed for it, and a body its schema accepts (the schemas refuse unknown fields, so
a field added to an answer and not to the document fails here). `/docs`
renders the document in a real browser under the server's own headers, fetching nothing from
elsewhere, and its "Try it out" reaches the server with the token."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
import trio
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from playwright.sync_api import Browser, expect

from actors import open_runtime, open_store
from actors.graphs import Graphs
from tests.conftest import RedisServer, RunningServer, StartServer, free_port
from tests.processes import stop_cleanly, wait_for_health
from tests.web.graph_helpers import (
    FAILING_GRAPH,
    GATED_GRAPH,
    GUARD,
    TWO_NODES,
    Gates,
    create_graph,
    make_tools,
    start_background,
)
from web.api_docs import PAGE
from web.app import create_app
from web.demo import Demo, demo_tools
from web.openapi import openapi_document

TOKEN = "s3cret"
FOREIGN_ORIGIN = "http://evil.example"
METHODS = ("get", "head", "post")


class Contract:
    """The document, and checks of real answers against it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(path template, method, operation) for every operation of the document."""
        for template, item in self.document["paths"].items():
            for method, operation in item.items():
                if method in METHODS:
                    yield template, method, operation

    def described(self, template: str, method: str, status: int) -> dict[str, Any]:
        operation = self.document["paths"][template][method]
        answer = operation["responses"].get(str(status))
        assert answer is not None, f"{method.upper()} {template} answers {status}: not described"
        if "$ref" in answer:
            answer = self.document["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
        return dict(answer)

    def validate(self, value: Any, schema: dict[str, Any]) -> None:
        """`value` against a schema of the document, its `$ref`s resolved in the document."""
        Draft202012Validator({**schema, "components": self.document["components"]}).validate(value)

    def check(self, template: str, answer: httpx.Response) -> httpx.Response:
        """The answer is one the document gives for its operation; returns it."""
        method = answer.request.method.lower()
        described = self.described(template, method, answer.status_code)
        content = described.get("content")
        if content is None:
            assert answer.content == b"", f"{method} {template}: {answer.status_code} has a body"
        else:
            media_type = answer.headers["content-type"].split(";")[0].strip()
            assert media_type in content, f"{method} {template}: {media_type} not described"
            if media_type == "application/json" and method != "head":
                self.validate(answer.json(), content[media_type]["schema"])
        for name, header in described.get("headers", {}).items():
            assert name in answer.headers, f"{method} {template}: no {name} header"
            self.validate(answer.headers[name], header["schema"])
        return answer


def url_of(template: str) -> str:
    """A concrete URL of a path template, each parameter standing for a resource that is not."""
    return re.sub(r"\{[^}]+\}", "nope", template)


def openapi_path(rule: str) -> str:
    """A werkzeug rule (`/runs/<run_id>`, `/static/<path:name>`) as an OpenAPI path."""
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


# -- the document ------------------------------------------------------------------------------


@pytest.mark.parametrize("token_required", [False, True], ids=["no-token", "token"])
def test_the_document_is_valid_openapi_3_1(token_required: bool) -> None:
    document = openapi_document(token_required=token_required)
    validate_openapi(document)
    assert document["openapi"].startswith("3.1")
    ids = [operation["operationId"] for _, _, operation in Contract(document).operations()]
    assert len(ids) == len(set(ids))


def test_only_a_server_with_a_token_documents_it() -> None:
    with_token = Contract(openapi_document(token_required=True))
    assert with_token.document["security"] == [{"bearer": []}]
    for template, method, operation in with_token.operations():
        open_route = operation.get("security") == []
        assert ("401" in operation["responses"]) is not open_route, f"{method} {template}"
    assert {t for t, _, o in with_token.operations() if o.get("security") == []} == {
        "/health", "/static/{name}", "/openapi.json", "/docs", "/docs/{name}", "/", "/ui/"
    }
    without = Contract(openapi_document(token_required=False))
    assert "security" not in without.document
    assert "securitySchemes" not in without.document["components"]
    assert all("401" not in o["responses"] for _, _, o in without.operations())


async def test_every_http_route_of_the_app_is_described_with_its_methods() -> None:
    """From the app's own routing table: each HTTP rule's path and methods (less the OPTIONS and
    HEAD every route answers) are those of the document, and nothing else is documented."""
    async with open_store("memory") as store, open_runtime(store, Demo().catalog()) as runtime:
        app = create_app(
            runtime, Graphs(runtime, demo_tools()), token=None, server_closing=trio.Event()
        )
        quart = inspect.getclosurevars(app).nonlocals["quart"]  # what create_app hands HTTP to
        routes: dict[str, set[str]] = {}
        heads: set[str] = set()
        for rule in quart.url_map.iter_rules():
            if not rule.websocket:
                path = openapi_path(rule.rule)
                routes.setdefault(path, set()).update(rule.methods - {"OPTIONS", "HEAD"})
                if "HEAD" in rule.methods:
                    heads.add(path)
    document = openapi_document(token_required=False)["paths"]
    described = {path: {m.upper() for m in item} - {"HEAD"} for path, item in document.items()}
    assert described == routes
    assert {path for path, item in document.items() if "head" in item} <= heads


# -- the document against a real server --------------------------------------------------------


async def served_contract(http: httpx.AsyncClient) -> Contract:
    answer = await http.get("/openapi.json")
    assert answer.status_code == 200
    contract = Contract(answer.json())
    contract.check("/openapi.json", answer)
    return contract


async def test_the_runs_routes_answer_as_described(gserver: RunningServer, gates: Gates) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url, timeout=GUARD) as http:
        contract = await served_contract(http)
        assert contract.document == openapi_document(token_required=False)

        async def check(template: str, method: str, url: str, **more: Any) -> httpx.Response:
            return contract.check(template, await http.request(method, url, **more))

        assert (await check("/health", "GET", "/health")).json()["status"] == "healthy"
        await check("/metrics", "GET", "/metrics")
        await check("/metrics.json", "GET", "/metrics.json")
        await check("/workflows", "GET", "/workflows")
        graph_id = await create_graph(http, GATED_GRAPH)
        finished_graph = await create_graph(http, TWO_NODES)
        done = (await http.post("/graph/run", json={"graph_id": finished_graph})).json()["run_id"]
        held = await start_background(http, graph_id, {})
        await gates.wait_reached("hold")
        page = (await check("/runs", "GET", "/runs?limit=1")).json()
        assert page["next"] is not None
        for query, status in [("", 200), ("?limit=1", 200), ("?status=running", 200),
                              (f"?workflow_id={graph_id}&q={held[:3]}", 200),
                              (f"?before={page['next']}", 200),
                              ("?limit=0", 422), ("?limit=x", 422), ("?status=DONE", 422),
                              ("?limit=1&limit=2", 422), ("?workflow_id=", 422), ("?q=", 422),
                              ("?before=x", 422)]:
            assert (await check("/runs", "GET", f"/runs{query}")).status_code == status, query
        counts = (await check("/runs/counts", "GET", "/runs/counts")).json()["counts"]
        assert counts["RUNNING"] == 1 and counts["COMPLETED"] == 1
        assert (await check("/runs/{run_id}", "GET", f"/runs/{held}")).json()["node"] is None
        assert (await check("/runs/{run_id}", "GET", "/runs/nope")).status_code == 404

        events = "/runs/{run_id}/events"
        streamed = await check(events, "GET", f"/runs/{done}/events")
        assert streamed.status_code == 200 and "event: end" in streamed.text
        count = (await http.get(f"/runs/{done}")).json()["event_count"]
        for url, status in [(f"/runs/{done}/events?from={count}", 204),
                            (f"/runs/{done}/events?from=x", 422),
                            (f"/runs/{done}/events?from={count + 1}", 422),
                            ("/runs/nope/events", 404)]:
            for method in ("GET", "HEAD"):
                assert (await check(events, method, url)).status_code == status, (method, url)
        assert (await check(events, "HEAD", f"/runs/{held}/events")).status_code == 200

        cancel = "/workflows/{workflow_id}/runs/{run_id}/cancel"
        for url, status in [(f"/workflows/{graph_id}/runs/{held}/cancel", 200),
                            (f"/workflows/{finished_graph}/runs/{done}/cancel", 409),
                            (f"/workflows/{graph_id}/runs/{done}/cancel", 404),
                            (f"/workflows/{graph_id}/runs/nope/cancel", 404)]:
            assert (await check(cancel, "POST", url)).status_code == status, url
        refused = await check(cancel, "POST", f"/workflows/{finished_graph}/runs/{done}/cancel",
                              content=b"x", headers={"Content-Type": "text/plain"})
        assert refused.status_code == 415


async def test_the_graph_routes_answer_as_described(gserver: RunningServer, gates: Gates) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url, timeout=GUARD) as http:
        contract = await served_contract(http)

        async def check(template: str, method: str, url: str, **more: Any) -> httpx.Response:
            return contract.check(template, await http.request(method, url, **more))

        create = "/graph/create"
        created = await check(create, "POST", create, json=TWO_NODES)
        assert created.status_code == 200
        graph_id = created.json()["graph_id"]
        for body, status in [({**TWO_NODES, "extra": 1}, 422), ({"name": 5, "nodes": {}}, 422),
                             ({"name": "x", "nodes": {"a": {"function": "nope"}}}, 422)]:
            assert (await check(create, "POST", create, json=body)).status_code == status
        for content, headers, status in [
            (b"{", {"Content-Type": "application/json"}, 422),
            (b"{}", {"Content-Type": "text/plain"}, 415),
            (b" " * (16 * 1024 * 1024 + 1), {"Content-Type": "application/json"}, 413),
        ]:
            answer = await check(create, "POST", create, content=content, headers=headers)
            assert answer.status_code == status

        await check("/graph/tools", "GET", "/graph/tools")
        stored = await check("/graph/{graph_id}", "GET", f"/graph/{graph_id}")
        assert stored.json()["graph_id"] == graph_id
        assert (await check("/graph/{graph_id}", "GET", "/graph/nope")).status_code == 404

        failing = await create_graph(http, FAILING_GRAPH)
        for path in ("/graph/run", "/graph/run/background"):
            for body, status in [({"graph_id": graph_id}, 200),
                                 ({"graph_id": failing, "initial_state": {}}, 200),
                                 ({"graph_id": "nope"}, 404),
                                 ({"graph_id": graph_id, "initial_state": []}, 422),
                                 ({"graph_id": graph_id, "initial_state": {"max_iterations": 0}},
                                  422),
                                 ({"graph_id": graph_id, "other": 1}, 422)]:
                assert (await check(path, "POST", path, json=body)).status_code == status, body
        failed = (await http.post("/graph/run", json={"graph_id": failing})).json()
        assert failed["status"] == "failed" and "error" in failed

        held = await start_background(http, await create_graph(http, GATED_GRAPH), {})
        await gates.wait_reached("hold")
        status, state = "/graph/background/{run_id}/status", "/graph/state/{run_id}"
        for run_id in (held, failed["run_id"], "nope"):
            await check(status, "GET", f"/graph/background/{run_id}/status")
            await check(state, "GET", f"/graph/state/{run_id}")
        gates.open("hold")


async def test_the_documents_and_files_answer_as_described(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        contract = await served_contract(http)
        for url, status in [("/docs", 200), ("/static/runcast.js", 200),
                            ("/static/example.html", 200), ("/static/nope.js", 404),
                            ("/static/dashboard/index.html", 200), ("/", 302), ("/ui/", 200)]:
            template = url if url in ("/docs", "/", "/ui/") else "/static/{name}"
            assert contract.check(template, await http.get(url)).status_code == status


class References(HTMLParser):
    """The `src` and `href` of a page's elements."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


async def test_every_file_the_docs_page_references_is_served_with_its_content_type(
    server: RunningServer,
) -> None:
    references = References()
    references.feed(PAGE)
    expected = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        contract = await served_contract(http)
        page = contract.check("/docs", await http.get("/docs"))
        assert page.text == PAGE
        assert "script-src 'self';" in page.headers["content-security-policy"]
        assert len(references.urls) == 5
        for url in references.urls:
            answer = contract.check("/docs/{name}", await http.get(url))
            assert answer.status_code == 200, url
            assert answer.headers["content-type"].split(";")[0] == expected[url[url.rfind("."):]]
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert len(answer.content) > 100, url
        for url in ("/docs/nope.js", "/docs/LICENSE", "/docs/..%2Fcore.py", "/docs/"):
            assert (await http.get(url)).status_code == 404, url


async def test_every_operation_refuses_a_foreign_origin_as_described(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        contract = await served_contract(http)
        for template, method, _ in contract.operations():
            answer = await http.request(
                method, url_of(template), json={} if method == "post" else None,
                headers={"Origin": FOREIGN_ORIGIN},
            )
            assert answer.status_code == 403, (method, template)
            contract.check(template, answer)


async def test_with_a_token_every_operation_but_the_open_ones_wants_it(
    start_server: StartServer,
) -> None:
    """Without the token: 401 exactly where the document says so; with it, none."""
    server = await start_server(token=TOKEN)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        contract = await served_contract(http)
        assert contract.document == openapi_document(token_required=True)
        authorization = {"Authorization": f"Bearer {TOKEN}"}
        for template, method, operation in contract.operations():
            url, body = url_of(template), {} if method == "post" else None
            answer = contract.check(template, await http.request(method, url, json=body))
            assert (answer.status_code == 401) is (operation.get("security") != []), template
            authorized = await http.request(method, url, json=body, headers=authorization)
            assert contract.check(template, authorized).status_code != 401



async def test_a_history_past_its_retention_is_a_described_410(
    start_server: StartServer, redis_url: str
) -> None:
    server = await start_server(store=redis_url, retention=0.5, tools=make_tools(Gates()))
    async with httpx.AsyncClient(base_url=server.base_url, timeout=GUARD) as http:
        contract = await served_contract(http)
        graph_id = await create_graph(http, TWO_NODES)
        run_id = (await http.post("/graph/run", json={"graph_id": graph_id})).json()["run_id"]
        await trio.sleep(0.7)
        for template in ("/graph/background/{run_id}/status", "/graph/state/{run_id}"):
            answer = await http.get(template.replace("{run_id}", run_id))
            assert contract.check(template, answer).status_code == 410, template


async def test_a_store_that_cannot_be_read_is_a_described_503(
    start_server: StartServer, own_redis: RedisServer
) -> None:
    """Redis killed: every route that reads or writes the store answers 503 as described, and
    /health says `failing` as described."""
    server = await start_server(store=own_redis.url, tools=make_tools(Gates()))
    async with httpx.AsyncClient(base_url=server.base_url, timeout=GUARD) as http:
        contract = await served_contract(http)
        graph_id = await create_graph(http, TWO_NODES)
        run_id = (await http.post("/graph/run", json={"graph_id": graph_id})).json()["run_id"]
        own_redis.kill()
        routes = [("/runs", "GET", "/runs"), ("/runs/counts", "GET", "/runs/counts"),
                  ("/runs/{run_id}", "GET", f"/runs/{run_id}"),
                 ("/runs/{run_id}/events", "GET", f"/runs/{run_id}/events"),
                 ("/graph/{graph_id}", "GET", f"/graph/{graph_id}"),
                 ("/graph/state/{run_id}", "GET", f"/graph/state/{run_id}"),
                 ("/graph/background/{run_id}/status", "GET",
                  f"/graph/background/{run_id}/status"),
                 ("/workflows/{workflow_id}/runs/{run_id}/cancel", "POST",
                  f"/workflows/{graph_id}/runs/{run_id}/cancel"),
                 ("/graph/run/background", "POST", "/graph/run/background"),
                 ("/graph/run", "POST", "/graph/run"), ("/graph/create", "POST", "/graph/create")]
        for template, method, url in routes:
            body = {"graph_id": graph_id} if template.startswith("/graph/run") else None
            body = TWO_NODES if template == "/graph/create" else body
            answer = await http.request(method, url, json=body)
            assert contract.check(template, answer).status_code == 503, (template, answer.text)
        with trio.fail_after(GUARD):
            while (answer := await http.get("/health")).status_code == 200:
                await trio.sleep(0.05)
        assert contract.check("/health", answer).json()["status"] == "failing"

# -- /docs in a browser ------------------------------------------------------------------------


@pytest.fixture
def token_server() -> Iterator[str]:
    """`runcast serve --token` as a user starts it, on a free port: its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "runcast"), "serve", "--port", str(port),
         "--store", "memory", "--token", TOKEN, "--demo-step-delay", "0"],
        stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(f"{base_url}/health", process)
        yield base_url
    finally:
        stop_cleanly(process, "runcast serve")


def test_the_docs_page_renders_and_tries_a_route_with_the_token(
    browser: Browser, token_server: str
) -> None:
    """Every operation is shown; the page fetches only from the server and logs no error (a
    script or style the page's Content-Security-Policy refused would be one); "Try it out" on
    `GET /workflows`, with the token given to Authorize, gets the server's 200."""
    with httpx.Client(base_url=token_server) as http:
        operations = len(list(Contract(http.get("/openapi.json").json()).operations()))
    context = browser.new_context()
    page = context.new_page()
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(f"{token_server}/docs")
        expect(page.locator(".opblock")).to_have_count(operations, timeout=GUARD * 1000)
        expect(page.locator("h2.title")).to_contain_text("runcast")

        page.locator("button.authorize").first.click()
        page.locator(".auth-container input").fill(TOKEN)
        page.locator(".auth-btn-wrapper button.authorize").click()
        page.locator(".auth-btn-wrapper button.btn-done").click()

        workflows = page.locator("#operations-runs-listWorkflows")
        workflows.locator(".opblock-summary").click()
        workflows.locator("button.try-out__btn").click()
        workflows.locator("button.execute").click()
        response = workflows.locator(".live-responses-table .response")
        expect(response.locator(".response-col_status")).to_have_text("200", timeout=GUARD * 1000)
        body = json.loads(response.locator(".response-col_description pre").first.inner_text())
        assert [workflow["id"] for workflow in body] == ["content-creation-workflow"]
    finally:
        context.close()
    assert problems == []
    assert requested and all(url.startswith(f"{token_server}/") for url in requested), requested
