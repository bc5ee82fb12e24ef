"""`/` and `/ui/` (web/dashboard_route.py) on a real server: the redirects to the dashboard, and
its page served as `/static/` serves it, without the token."""

from __future__ import annotations

import httpx

from tests.conftest import RunningServer, StartServer
from web.static_files import CONTENT_SECURITY_POLICY, STATIC_FOLDER

PAGE = STATIC_FOLDER / "dashboard" / "index.html"


async def test_the_root_redirects_to_the_dashboard(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/ui/"


async def test_ui_without_its_slash_redirects_to_it(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.get("/ui")
        assert response.status_code in (301, 302, 307, 308)
        assert httpx.URL(server.base_url).join(response.headers["Location"]).path == "/ui/"
        assert (await http.get("/ui", follow_redirects=True)).content == PAGE.read_bytes()


async def test_the_dashboard_page_is_served_with_the_static_files_headers(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        page = await http.get("/ui/")
        static = await http.get("/static/dashboard/index.html")
    assert page.status_code == 200
    assert page.content == PAGE.read_bytes() == static.content
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-cache"
    assert "Expires" not in page.headers
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


async def test_the_dashboard_needs_no_token_and_the_routes_it_calls_do(
    start_server: StartServer,
) -> None:
    server = await start_server(token="s3cret")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await http.get("/")).status_code == 302
        assert (await http.get("/ui/")).status_code == 200
        assert (await http.get("/ui", follow_redirects=True)).status_code == 200
        assert (await http.get("/static/dashboard/index.html")).status_code == 200
        assert (await http.get("/runs")).status_code == 401
        assert (await http.get("/ui/index.html")).status_code == 401

