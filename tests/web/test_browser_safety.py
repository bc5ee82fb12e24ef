"""The browser rules (web/cross_site.py, web/origins.py, `/workflows/ws` in web/app.py) on a
real server, with the headers a browser would send: a page of another origin can neither change
anything (a cross-site `no-cors` POST once cancelled a live run) nor open a WebSocket (pages of
another port and `file://` pages once started runs); CORS lets the allowed pages read answers;
scripts, which send no Origin, are served as before."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from trio_websocket import ConnectionRejected, open_websocket_url

from actors.workflows.examples.code_review import code_review_graph
from tests.conftest import RunningServer, StartServer
from tests.web.graph_helpers import GATED_GRAPH, Gates, create_graph, start_background

REFUSED_ORIGINS = ["http://evil.example", "null", "http://127.0.0.1:1", "http://localhost"]


def own_origins(server: RunningServer) -> list[str]:
    """Loopback origins of the server's own port, each allowed by default."""
    port = server.port
    return [f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"https://[::1]:{port}"]


def refused_detail(origin: str) -> dict[str, str]:
    return {"detail": f"Origin {origin!r} is not allowed (the server's --allowed-origins)"}


def ws_base(server: RunningServer) -> str:
    return server.base_url.replace("http://", "ws://")


async def handshake(url: str, origin: str | None) -> dict[str, Any]:
    """Open a WebSocket with this Origin and return the server's first frame."""
    headers = None if origin is None else [(b"Origin", origin.encode())]
    async with open_websocket_url(url, extra_headers=headers) as ws:
        return dict(json.loads(await ws.get_message()))


async def refusal(url: str, origin: str) -> ConnectionRejected:
    with pytest.raises(ConnectionRejected) as rejected:
        await handshake(url, origin)
    return rejected.value


# -- state-changing requests -------------------------------------------------------------------


async def test_a_cross_site_post_is_refused_and_changes_nothing(
    gserver: RunningServer, gates: Gates
) -> None:
    """The finding: `fetch(cancel, {method: "POST", mode: "no-cors"})` from another site, which a
    browser sends without a preflight, cancelled a live run."""
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        graph_id = await create_graph(http, GATED_GRAPH)
        run_id = await start_background(http, graph_id, {})
        await gates.wait_reached("hold")
        cancel = f"/workflows/{graph_id}/runs/{run_id}/cancel"
        for origin in REFUSED_ORIGINS:
            for headers in ({"Content-Type": "text/plain"}, {}):
                answer = await http.post(cancel, content=b"", headers={"Origin": origin, **headers})
                assert answer.status_code == 403
                assert answer.json() == refused_detail(origin)
                assert "access-control-allow-origin" not in answer.headers
            created = await http.post(
                "/graph/create", json=code_review_graph(), headers={"Origin": origin}
            )
            assert created.status_code == 403
        assert (await http.get(f"/runs/{run_id}")).json()["status"] == "RUNNING"
        assert len((await http.get("/runs")).json()["runs"]) == 1
        cancelled = await http.post(cancel)  # a script: no Origin, no body
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelling"


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/graph/create", "text/plain", json.dumps(code_review_graph()).encode()),
        ("/graph/create", "application/x-www-form-urlencoded", b"name=x"),
        ("/graph/create", "multipart/form-data; boundary=x", b"--x--"),
        ("/graph/run", "text/plain", b'{"graph_id": "g", "initial_state": {}}'),
        ("/graph/run/background", "text/plain;charset=UTF-8", b"{}"),
        ("/workflows/w/runs/r/cancel", "text/plain", b""),
    ],
)
async def test_a_post_that_is_not_json_is_refused_with_415(
    server: RunningServer, path: str, content_type: str, body: bytes
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        for origin in (None, own_origins(server)[0]):
            headers = {"Content-Type": content_type}
            if origin is not None:
                headers["Origin"] = origin
            answer = await http.post(path, content=body, headers=headers)
            assert answer.status_code == 415, answer.text
            assert answer.json() == {
                "detail": f"Content-Type must be application/json, got {content_type!r}"
            }
        assert (await http.get("/runs")).json() == {"runs": [], "next": None}


async def test_a_post_with_a_body_and_no_content_type_is_refused_with_415(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        for path in ("/graph/create", "/workflows/w/runs/r/cancel"):
            answer = await http.post(path, content=b"{}")
            assert answer.status_code == 415
            assert answer.json() == {
                "detail": "A POST with a body needs Content-Type: application/json"
            }


async def test_json_posts_and_empty_cancels_are_served_from_scripts_and_allowed_pages(
    gserver: RunningServer, gates: Gates
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http:
        page = own_origins(gserver)[1]
        created = await http.post(
            "/graph/create",
            content=json.dumps(GATED_GRAPH).encode(),
            headers={"Content-Type": "application/json; charset=utf-8", "Origin": page},
        )
        assert created.status_code == 200
        assert created.headers["access-control-allow-origin"] == page
        graph_id = created.json()["graph_id"]
        for origin in (None, page):
            run_id = await start_background(http, graph_id, {})
            await gates.wait_reached("hold")
            headers = {} if origin is None else {"Origin": origin}
            answer = await http.post(f"/workflows/{graph_id}/runs/{run_id}/cancel", headers=headers)
            assert answer.status_code == 200 and answer.json()["status"] == "cancelling"


# -- WebSocket handshakes ----------------------------------------------------------------------


async def test_a_websocket_is_refused_with_403_from_another_origin_and_served_from_its_own(
    server: RunningServer,
) -> None:
    """The finding: pages of another port and `file://` pages (`Origin: null`) started runs."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        graph_id = await create_graph(http, code_review_graph())
        urls = [server.ws_url, f"{ws_base(server)}/ws/graph/run/{graph_id}"]
        for origin in REFUSED_ORIGINS:
            for url in urls:
                rejected = await refusal(url, origin)
                assert rejected.status_code == 403, url
                assert dict(rejected.headers)[b"content-type"] == b"application/json"
                assert json.loads(rejected.body or b"") == refused_detail(origin)
        for served in [None, *own_origins(server)]:  # a script, and pages the server could serve
            assert (await handshake(urls[0], served))["event"] == "connected"
            assert (await handshake(urls[1], served))["type"] == "connected"
        assert (await http.get("/runs")).json() == {"runs": [], "next": None}


# -- CORS ----------------------------------------------------------------------------------------


async def test_answers_name_an_allowed_origin_and_vary_by_origin(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        for origin in own_origins(server):
            answer = await http.get("/runs", headers={"Origin": origin})
            assert answer.status_code == 200
            assert answer.headers["access-control-allow-origin"] == origin
            assert answer.headers["vary"] == "Origin"
            missing = await http.get("/runs/nope", headers={"Origin": origin})
            assert missing.status_code == 404
            assert missing.headers["access-control-allow-origin"] == origin
        plain = await http.get("/runs")
        assert "access-control-allow-origin" not in plain.headers
        assert plain.headers["vary"] == "Origin"
        refused = await http.get("/runs", headers={"Origin": "http://evil.example"})
        assert refused.status_code == 403
        assert refused.json() == refused_detail("http://evil.example")


async def test_a_preflight_is_answered_without_the_token(start_server: StartServer) -> None:
    server = await start_server(token="s3cret")
    page = own_origins(server)[0]
    preflight = {
        "Origin": page,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.options("/graph/create", headers=preflight)
        assert answer.status_code == 204, answer.text
        assert answer.headers["access-control-allow-origin"] == page
        assert answer.headers["access-control-allow-methods"] == "OPTIONS, POST"
        allowed = answer.headers["access-control-allow-headers"]
        assert allowed == "Authorization, Content-Type, Last-Event-ID"
        assert answer.headers["access-control-max-age"] == "600"
        assert answer.headers["vary"] == "Origin"
        runs = await http.options("/runs", headers=preflight)
        assert runs.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
        created = await http.post(
            "/graph/create",
            json=code_review_graph(),
            headers={"Origin": page, "Authorization": "Bearer s3cret"},
        )
        assert created.status_code == 200
        assert created.headers["access-control-allow-origin"] == page
        unauthorized = await http.post("/graph/create", json={}, headers={"Origin": page})
        assert unauthorized.status_code == 401
        assert unauthorized.headers["access-control-allow-origin"] == page  # the page reads why
        evil = {**preflight, "Origin": "http://evil.example"}
        refused = await http.options("/graph/create", headers=evil)
        assert refused.status_code == 403
        assert "access-control-allow-origin" not in refused.headers
        unknown = await http.options("/nope", headers=preflight)
        assert unknown.status_code == 404


# -- --allowed-origins -----------------------------------------------------------------------------


async def test_allowed_origins_replaces_the_default(start_server: StartServer) -> None:
    app = "https://app.example"
    server = await start_server(allowed_origins=(app,))
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.post("/graph/create", json=code_review_graph(), headers={"Origin": app})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == app
        graph_id = answer.json()["graph_id"]
        assert (await handshake(server.ws_url, app))["event"] == "connected"
        own = own_origins(server)[0]
        assert (await http.get("/runs", headers={"Origin": own})).status_code == 403
        assert (await refusal(server.ws_url, own)).status_code == 403
        graph_url = f"{ws_base(server)}/ws/graph/run/{graph_id}"
        assert (await refusal(graph_url, own)).status_code == 403


@pytest.mark.parametrize("origin", ["http://evil.example", "null"])
async def test_star_allows_every_origin(start_server: StartServer, origin: str) -> None:
    server = await start_server(allowed_origins=("*",))
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get("/runs", headers={"Origin": origin})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == origin
    assert (await handshake(server.ws_url, origin))["event"] == "connected"
