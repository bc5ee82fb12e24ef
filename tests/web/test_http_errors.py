"""web/errors.py over a real server: the errors Quart and werkzeug make themselves (unknown route,
wrong method, body too large) are JSON `{"detail": ...}` with their status, never HTML, on HTTP
routes and on WebSocket handshakes alike."""

from __future__ import annotations

import httpx
import pytest
from trio_websocket import ConnectionRejected, open_websocket_url

from tests.conftest import RunningServer


def assert_json_error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert list(body) == ["detail"] and isinstance(body["detail"], str)
    return str(body["detail"])


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("POST", "/nope"), ("GET", "/runs/a/b"), ("DELETE", "/graph/x/y")],
)
async def test_an_unknown_route_is_a_json_404(server: RunningServer, method: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.request(method, path)
    assert assert_json_error(answer, 404) == f"No route for {method} {path}"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/runs", "GET, HEAD, OPTIONS"),
        ("DELETE", "/runs/x", "GET, HEAD, OPTIONS"),
        ("GET", "/graph/run/background", "OPTIONS, POST"),
        ("PUT", "/workflows/w/runs/r/cancel", "OPTIONS, POST"),
    ],
)
async def test_a_method_the_route_does_not_take_is_a_json_405(
    server: RunningServer, method: str, path: str, allowed: str
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.request(method, path)
    detail = assert_json_error(answer, 405)
    assert detail == f"{method} {path}: the method is not allowed here; allowed: {allowed}"
    assert sorted(answer.headers["allow"].split(", ")) == allowed.split(", ")


async def test_a_body_over_the_limit_is_a_json_413(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.post(
            "/graph/create",
            content=b" " * (16 * 1024 * 1024 + 1),
            headers={"Content-Type": "application/json"},
        )
    detail = assert_json_error(answer, 413)
    assert detail == "The request body is larger than the limit of 16777216 bytes"


async def test_a_websocket_to_an_unknown_path_is_a_json_404(server: RunningServer) -> None:
    url = server.base_url.replace("http://", "ws://") + "/ws/nope"
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(url):
            pass
    assert rejected.value.status_code == 404
    assert dict(rejected.value.headers)[b"content-type"] == b"application/json"
    assert rejected.value.body == b'{"detail":"No route for WebSocket /ws/nope"}\n'
