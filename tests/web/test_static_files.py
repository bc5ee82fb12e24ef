"""`/static/` (web/static_files.py) on a real server: the browser files with their own content
types and protective headers, without the token, and nothing else (no other kind of file, no
path out of the folder, no `static/` folder of the working directory)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, StartServer
from web.static_files import CONTENT_SECURITY_POLICY, STATIC_FOLDER

SERVED = {
    "runcast.js": "text/javascript; charset=utf-8",
    "example.js": "text/javascript; charset=utf-8",
    "example.html": "text/html; charset=utf-8",
    "example.css": "text/css; charset=utf-8",
}


@pytest.mark.parametrize("name", sorted(SERVED))
async def test_each_browser_file_is_served_as_it_is_on_disk_with_its_type(
    server: RunningServer, name: str
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.content == (STATIC_FOLDER / name).read_bytes()
    assert response.headers["Content-Type"] == SERVED[name]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "Expires" not in response.headers
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


async def test_the_files_need_no_token_and_the_routes_still_do(start_server: StartServer) -> None:
    server = await start_server(token="s3cret")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await http.get("/static/runcast.js")).status_code == 200
        assert (await http.get("/runs")).status_code == 401
        assert (await http.get("/static/../runs")).status_code in (401, 404)


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fapp.py",
        "/static/static_files.py",
        "/static/",
        "/static/runcast.js.map",
    ],
)
async def test_anything_else_under_static_is_a_json_404(server: RunningServer, path: str) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.get(path)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert "detail" in response.json()


async def test_a_static_folder_of_the_working_directory_is_not_served(
    start_server: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quart's own static route served `<the working directory>/static/`."""
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "secret.js").write_text("// not for the web\n")
    monkeypatch.chdir(tmp_path)
    server = await start_server()
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await http.get("/static/secret.js")).status_code == 404
