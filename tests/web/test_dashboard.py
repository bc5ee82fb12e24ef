"""The dashboard (web/static/dashboard/, served at /ui/) in a real chromium (the `browser`
fixture) against real `runcast serve` processes: the runs list follows runs as they start and
finish; a run's page shows every event of a running run once, in order, as the server's own
replay has it, across a dropped connection (a relay in front of the server cuts every socket)
and across a server killed and started again on its port and SQLite file; a finished run replays
from an index; a run is cancelled, started (a workflow with a message), and a graph run started
with an initial state shows its graph with the current node highlighted and each node's passes;
a server with --token asks for it once per tab (again if it refuses it); the list works from the keyboard, and the pages
fit 1280x800 and a phone's width.

Each test saves screenshots in its `tmp_path` (`*.png`), the last one at its end, failed or not.
The graph test's screenshot of a live graph run is the README's (docs/dashboard.png): run it
with `RUNCAST_SCREENSHOTS=docs` to write it there too.

This module is also the `--app` of the graph test's server (`app` below): the demo workflow and
graph tools of its own, among them `hold`, which waits until a file exists, so that "the run is
in node hold" is a fact the test makes, not a timing."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from playwright.sync_api import Browser, Page, expect
from websockets.sync.client import connect

from actors.workflows.tools import ToolRegistry
from tests.conftest import free_port
from tests.web.test_browser_client import (
    LONG,
    TOKEN,
    WORKFLOW,
    ServerProcess,
    replay,
    shown_events,
    start_run,
)
from web.app_loader import App
from web.demo import Demo

HERE = Path(__file__).resolve()
REPOSITORY = HERE.parents[2]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PAGE_SIZE = 50  # runs_list.js's

# --- the graph test's app: `runcast serve --app tests.web.test_dashboard:app` ----------------

graph_tools = ToolRegistry()


@graph_tools.tool
def tick(state: dict[str, Any]) -> dict[str, Any]:
    """Add one to `count`."""
    return {"count": state.get("count", 0) + 1}


@graph_tools.tool
async def hold(state: dict[str, Any], gate: str) -> dict[str, Any]:
    """Wait until the file `gate` exists."""
    while not os.path.exists(gate):
        await trio.sleep(0.02)
    return {"held": True}


app = App(catalog=Demo(step_delay=0.05, steps=2).catalog(), tools=graph_tools)


def ticking_graph(gate: Path) -> dict[str, Any]:
    """begin, then tick until count is 3 (twice, from a count of 0), then hold (until `gate`
    exists), then done."""
    return {
        "name": "ticking",
        "nodes": {
            "begin": {"function": "tick"},
            "tick": {"function": "tick"},
            "hold": {"function": "hold", "params": {"gate": str(gate)}},
            "done": {"function": "tick"},
        },
        "edges": {"begin": "tick", "hold": "done"},
        "conditional_edges": {"tick": {"condition": "count >= 3", "true": "hold", "false": "tick"}},
    }


# --- servers, a relay, pages ---------------------------------------------------------------------


def start_process(directory: Path, *options: str) -> ServerProcess:
    directory.mkdir(exist_ok=True)
    server = ServerProcess(directory, list(options))
    server.start()
    return server


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the tests that need no restart: demo runs of about 3 s."""
    server = start_process(tmp_path_factory.mktemp("dashboard"), "--demo-step-delay", "0.5", "--demo-steps", "6")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_servers() -> Iterator[list[ServerProcess]]:
    """The servers a test starts for itself (append them); all killed at its end."""
    servers: list[ServerProcess] = []
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


class Relay:
    """A TCP relay on a loopback port in front of a server's port, in threads: `cut()` closes
    every connection through it at once, both sides, as a dropped network would; connections
    made afterwards go through again."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.sockets |= {downstream, upstream}
            for source, sink in [(downstream, upstream), (upstream, downstream)]:
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source, sink)

    def _close(self, *sockets: socket.socket) -> None:
        for each in sockets:
            with self.lock:
                self.sockets.discard(each)
            try:
                each.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            each.close()

    def cut(self) -> None:
        with self.lock:
            connections = list(self.sockets)
        self._close(*connections)

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.cut()


@attrs.define
class Screenshots:
    """Where a test's screenshots go: its tmp_path."""

    directory: Path

    def save(self, page: Page, name: str, full_page: bool = False) -> Path:
        path = self.directory / f"{name}.png"
        page.screenshot(path=path, full_page=full_page)
        return path


def publish(screenshot: Path) -> None:
    """Copy the README's screenshot to $RUNCAST_SCREENSHOTS, when set (`docs` refreshes it)."""
    directory = os.environ.get("RUNCAST_SCREENSHOTS")
    if directory:
        shutil.copyfile(screenshot, Path(directory) / screenshot.name)


@pytest.fixture
def screenshots(tmp_path: Path) -> Screenshots:
    return Screenshots(tmp_path)


@pytest.fixture
def page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    """A page at 1280x800 in a context of its own; at the end, failed or not, its screenshot
    (`end.png`), and no uncaught error or unhandled rejection."""
    context = browser.new_context(viewport=DESKTOP)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        opened.screenshot(path=tmp_path / "end.png", full_page=True)
        context.close()
    assert errors == []


def get_json(url: str, token: str | None = None) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as answer:
        return json.load(answer)


def post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def start_finished_runs(base_url: str, count: int) -> list[str]:
    """Start `count` runs of the demo workflow on one WebSocket, one after the other, each
    once the one before has ended: their ids, oldest first."""
    run_ids: list[str] = []
    with connect(base_url.replace("http://", "ws://") + "/workflows/ws") as socket_to_server:
        json.loads(socket_to_server.recv(timeout=10))
        for _ in range(count):
            socket_to_server.send(json.dumps({"action": "start-workflow", "workflow_id": WORKFLOW}))
            while (frame := json.loads(socket_to_server.recv(timeout=10)))["event"] != "WorkflowCompleted":
                pass
            run_ids.append(str(frame["run_id"]))
    return run_ids


def run_row(page: Page, run_id: str) -> Any:
    return page.locator(f'#runs tr[data-run-id="{run_id}"]')


def fits_the_width(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def record_connection_states(page: Page) -> None:
    """From now on, window.connectionStates lists each state the run page's connection shows."""
    page.evaluate("""() => {
      window.connectionStates = [];
      const connection = document.getElementById("connection");
      new MutationObserver(() => connectionStates.push(connection.dataset.state))
        .observe(connection, { attributes: true, attributeFilter: ["data-state"] });
    }""")


# --- the tests -----------------------------------------------------------------------------------


def test_the_list_follows_runs_as_they_start_and_finish(
    demo_server: ServerProcess, page: Page, screenshots: Screenshots
) -> None:
    page.goto(f"{demo_server.url}/")
    expect(page).to_have_url(f"{demo_server.url}/ui/")
    expect(page.locator("#runs")).to_be_attached()
    run_id = start_run(demo_server.url)
    row = run_row(page, run_id)
    expect(row).to_have_attribute("data-status", "RUNNING")
    expect(row).to_contain_text("Content Creation Workflow")
    screenshots.save(page, "list-running")
    expect(row).to_have_attribute("data-status", "COMPLETED", timeout=LONG)
    events = get_json(f"{demo_server.url}/runs/{run_id}")["event_count"]
    expect(row.locator("td").nth(4)).to_have_text(str(events))

    # filters and search narrow the same list
    page.select_option("#filter-status", "RUNNING")
    expect(row).not_to_be_attached()
    page.select_option("#filter-status", "COMPLETED")
    expect(row).to_be_attached()
    page.fill("#filter-search", run_id[:8])
    expect(page.locator("#runs tr")).to_have_count(1)
    page.fill("#filter-search", "no-such-run")
    expect(page.locator("#runs tr.empty")).to_be_attached()
    screenshots.save(page, "list-filtered")


def test_the_keyboard_reaches_every_row_and_button_and_the_pages_fit_a_desktop_and_a_phone(
    demo_server: ServerProcess, page: Page, screenshots: Screenshots
) -> None:
    run_id = start_run(demo_server.url)
    page.goto(f"{demo_server.url}/ui/#/runs")
    expect(run_row(page, run_id)).to_be_attached()
    assert fits_the_width(page)
    page.set_viewport_size(PHONE)
    assert fits_the_width(page)
    screenshots.save(page, "list-phone")
    page.set_viewport_size(DESKTOP)

    link = run_row(page, run_id).locator("a")
    for _ in range(40):  # Tab through the page until the run's link has the focus
        page.keyboard.press("Tab")
        if link.evaluate("link => link === document.activeElement"):
            break
    expect(link).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{demo_server.url}/ui/#/runs/{run_id}")
    expect(page.locator("#events tr").first).to_be_attached()
    page.focus("#autoscroll")
    page.keyboard.press("Enter")
    expect(page.locator("#autoscroll")).to_have_attribute("aria-pressed", "false")
    assert fits_the_width(page)
    page.set_viewport_size(PHONE)
    assert fits_the_width(page)
    screenshots.save(page, "run-phone")


def test_a_run_page_shows_every_event_once_across_a_dropped_connection_and_a_restart(
    own_servers: list[ServerProcess], tmp_path: Path, page: Page, screenshots: Screenshots
) -> None:
    port = free_port()
    relay = Relay(port)
    try:
        server = ServerProcess(tmp_path, ["--demo-step-delay", "0.5", "--allowed-origins", relay.url], port=port)
        own_servers.append(server)
        server.start()
        run_id = start_run(server.url)
        page.goto(f"{relay.url}/ui/#/runs/{run_id}")
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        record_connection_states(page)
        expect(page.locator("#events tr").nth(2)).to_be_attached()

        relay.cut()  # every socket of the page dropped; the server goes on
        page.wait_for_function("() => connectionStates.includes('reconnecting')")
        shown = page.locator("#events tr").count()
        expect(page.locator("#events tr").nth(shown + 2)).to_be_attached()  # live again
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")

        server.kill()  # and then the server itself, killed and started again
        expect(page.locator("#connection")).to_contain_text("reconnecting…")
        screenshots.save(page, "run-reconnecting")
        server.start()
        expect(page.locator("#connection")).to_have_attribute("data-state", "ended", timeout=LONG)
        screenshots.save(page, "run-ended")
    finally:
        relay.close()

    shown_rows = shown_events(page)
    assert shown_rows == replay(server.url, run_id)
    assert shown_rows[-1][1] == "WorkflowError"  # the restarted server closed the interrupted run
    expect(page.locator("#run-status")).to_have_attribute("data-status", "ERROR")


def test_a_finished_run_replays_from_an_index(
    demo_server: ServerProcess, page: Page, screenshots: Screenshots
) -> None:
    run_id = start_run(demo_server.url)
    page.goto(f"{demo_server.url}/ui/#/runs/{run_id}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "ended", timeout=LONG)
    everything = replay(demo_server.url, run_id)
    assert shown_events(page) == everything
    expect(page.locator("#output")).to_contain_text("[seo] done for input")

    page.fill("#replay-from", "7")
    page.click("#replay")
    expect(page.locator("#events tr").first).to_have_attribute("data-index", "7")
    expect(page.locator("#connection")).to_have_attribute("data-state", "ended")
    assert shown_events(page) == everything[7:]
    assert page.url.endswith(f"#/runs/{run_id}?from=7")
    screenshots.save(page, "replay-from-7")

    page.click("#replay-start")
    expect(page.locator("#events tr").first).to_have_attribute("data-index", "0")
    expect(page.locator("#connection")).to_have_attribute("data-state", "ended")
    assert shown_events(page) == everything


def test_the_cancel_button_cancels_a_running_run(
    demo_server: ServerProcess, page: Page, screenshots: Screenshots
) -> None:
    run_id = start_run(demo_server.url)
    page.goto(f"{demo_server.url}/ui/#/runs/{run_id}")
    expect(page.locator("#events tr").first).to_be_attached()
    expect(page.locator("#cancel")).to_be_enabled()
    page.click("#cancel")
    expect(page.locator("#connection")).to_have_attribute("data-state", "ended", timeout=LONG)
    expect(page.locator("#output")).to_contain_text("Cancelled: cancelled from the dashboard")
    expect(page.locator("#run-status")).to_have_attribute("data-status", "CANCELLED")
    expect(page.locator("#cancel")).to_be_disabled()
    screenshots.save(page, "cancelled")
    shown = shown_events(page)
    assert shown == replay(demo_server.url, run_id)
    assert [name for _, name in shown[-2:]] == ["WorkflowCancelled", "WorkflowCompleted"]


def test_starting_a_run_of_a_workflow_with_a_message(
    demo_server: ServerProcess, page: Page, screenshots: Screenshots
) -> None:
    page.goto(f"{demo_server.url}/ui/#/start")
    expect(page.locator("#start-workflow")).to_have_value(WORKFLOW)
    page.fill("#start-message", "a message from the dashboard")
    screenshots.save(page, "start")
    page.click("#start-run")
    page.wait_for_url("**/ui/#/runs/*")
    run_id = page.url.rsplit("/", 1)[-1]
    expect(page.locator("#events tr").first).to_have_attribute("data-event", "WorkflowStarted")
    assert get_json(f"{demo_server.url}/runs/{run_id}")["input"] == "a message from the dashboard"
    expect(page.locator("#timeline li").first).to_contain_text("research")


def test_a_graph_run_started_with_an_initial_state_shows_its_current_node_and_passes(
    own_servers: list[ServerProcess], tmp_path: Path, page: Page, screenshots: Screenshots
) -> None:
    server = ServerProcess(tmp_path, ["--app", "tests.web.test_dashboard:app"])
    own_servers.append(server)
    server.start()
    gate = tmp_path / "open-the-gate"
    graph_id = post_json(f"{server.url}/graph/create", ticking_graph(gate))["graph_id"]

    page.goto(f"{server.url}/ui/#/start")
    page.fill("#graph-id", graph_id)
    page.fill("#graph-state", json.dumps({"count": 0, "note": "from the dashboard"}))
    page.click("#start-graph")
    page.wait_for_url("**/ui/#/runs/*")
    run_id = page.url.rsplit("/", 1)[-1]
    assert json.loads(get_json(f"{server.url}/runs/{run_id}")["input"]) == {"count": 0, "note": "from the dashboard"}

    hold_node = page.locator('#graph [data-node="hold"]')
    expect(hold_node).to_have_class("graph-node current")
    expect(hold_node).to_have_attribute("data-passes", "1")
    expect(page.locator('#graph [data-node="tick"]')).to_have_attribute("data-passes", "2")
    expect(page.locator('#graph [data-node="tick"]')).to_contain_text("2 passes")
    expect(page.locator('#graph [data-node="done"]')).to_have_attribute("data-passes", "0")
    expect(page.locator("#graph .current")).to_have_count(1)
    expect(page.locator("#timeline li")).to_have_count(4)  # begin, tick, tick again, hold
    publish(screenshots.save(page, "dashboard", full_page=True))  # the README's screenshot

    gate.touch()
    expect(page.locator("#connection")).to_have_attribute("data-state", "ended", timeout=LONG)
    expect(page.locator('#graph [data-node="END"]')).to_have_class("graph-node graph-end current")
    expect(page.locator('#graph [data-node="done"]')).to_have_attribute("data-passes", "1")
    expect(page.locator("#output")).to_contain_text('"held": true')
    assert shown_events(page) == replay(server.url, run_id)


def test_a_server_with_a_token_asks_for_it_once_and_the_tab_keeps_it(
    own_servers: list[ServerProcess], tmp_path: Path, page: Page, screenshots: Screenshots
) -> None:
    server = ServerProcess(tmp_path, ["--demo-step-delay", "0.05", "--token", TOKEN])
    own_servers.append(server)
    server.start()
    page.goto(f"{server.url}/ui/")
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#token-reason")).to_have_text("The server needs a token.")
    screenshots.save(page, "token-prompt")
    page.fill("#token-input", "not-the-token")
    page.keyboard.press("Enter")
    expect(page.locator("#token-reason")).to_have_text("The server refused the token.")
    expect(dialog).to_be_visible()
    page.fill("#token-input", TOKEN)
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('runcast.token')") == TOKEN

    # the tab keeps it: a run started now is listed and watched with it, after a reload too
    page.goto(f"{server.url}/ui/#/start")
    expect(page.locator("#start-workflow")).to_have_value(WORKFLOW)
    page.click("#start-run")
    page.wait_for_url("**/ui/#/runs/*")
    run_id = page.url.rsplit("/", 1)[-1]
    expect(page.locator("#connection")).to_have_attribute("data-state", "ended", timeout=LONG)
    page.reload()
    expect(page.locator("#connection")).to_have_attribute("data-state", "ended")
    assert shown_events(page) == replay(server.url, run_id, TOKEN)
    page.goto(f"{server.url}/ui/#/runs")
    expect(run_row(page, run_id)).to_have_attribute("data-status", "COMPLETED")
    expect(dialog).to_be_hidden()
    assert get_json(f"{server.url}/runs/{run_id}", TOKEN)["status"] == "COMPLETED"


def test_the_list_pages_through_the_runs_and_the_server_panel_charts_the_metrics(
    own_servers: list[ServerProcess], tmp_path: Path, page: Page, screenshots: Screenshots
) -> None:
    server = ServerProcess(tmp_path, ["--demo-step-delay", "0"])
    own_servers.append(server)
    server.start()
    run_ids = start_finished_runs(server.url, PAGE_SIZE + 2)
    page.goto(f"{server.url}/ui/#/runs")
    expect(run_row(page, run_ids[-1])).to_be_attached()
    expect(page.locator("#runs tr")).to_have_count(PAGE_SIZE)
    expect(page.locator("#page-newer")).to_be_disabled()
    page.click("#page-older")
    expect(page.locator("#page-number")).to_have_text("page 2")
    expect(page.locator("#runs tr")).to_have_count(2)
    assert page.eval_on_selector_all("#runs tr", "rows => rows.map((row) => row.dataset.runId)") == run_ids[1::-1]
    expect(page.locator("#page-older")).to_be_disabled()

    [arrived] = start_finished_runs(server.url, 1)  # a later page stays as it is, and says so
    expect(page.locator("#runs-arrived")).to_contain_text("1 new run since this page was opened.")
    expect(run_row(page, arrived)).not_to_be_attached()
    screenshots.save(page, "list-page-2")
    page.click("#page-newest")
    expect(run_row(page, arrived)).to_be_attached()
    expect(page.locator("#page-number")).to_have_text("page 1")

    page.click("nav.main-nav a[data-section=server]")
    expect(page.locator("#server-about")).to_contain_text(f"{len(run_ids) + 1} runs started")
    expect(page.locator("#metric-live-runs")).to_have_text("0")
    expect(page.locator("#metric-events-per-second")).to_have_text(re.compile(r"^\d+\.\d$"))
    expect(page.locator(".metric .sparkline polyline").first).to_have_attribute("points", re.compile(r"\d+,\d+.* \d+"))
    screenshots.save(page, "server-panel")
