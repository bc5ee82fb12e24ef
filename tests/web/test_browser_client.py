"""runcast.js (web/static/runcast.js) and the example page in a real chromium (the `browser`
fixture), against real `runcast serve` processes: a page follows a run through a server killed
and started again on its port and SQLite file, through the restart of the node it follows a
run on while the run goes on elsewhere (two nodes on Redis), and with a token, which every new
connection presents again; an EventSource on `GET /runs/{run_id}/events` resumes by itself
through `Last-Event-ID`. Every event is shown once, in order, through the terminal one, as the
server's own replay has it. The cursor, without sockets, against the model of the server's
answers the Python client's cursor is tested on (tests/client/test_cursor.py).

Each test that drives a page saves screenshots in its `tmp_path` (`*.png`). The tests are sync:
Playwright's sync API runs its own event loop, and the servers are processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser, Page, expect
from websockets.sync.client import connect

from tests.client.test_cursor import LAST_CONNECTION, NOISE, RUN, event, server_answer
from tests.conftest import Cluster, StartCluster, free_port
from tests.processes import wait_for_health
from web.static_files import STATIC_FOLDER

WORKFLOW = "content-creation-workflow"
TOKEN = "s3cret-token"
LONG = 30_000  # milliseconds: waits that span a server restart


@attrs.define
class ServerProcess:
    """`runcast serve` on a port and SQLite file of its own, which a test kills and starts
    again on both; its stderr goes to `<directory>/serve.log`."""

    directory: Path
    options: list[str]
    port: int = attrs.field(factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.directory / "serve.log", "ab") as log:
            self.process = subprocess.Popen(
                [os.path.join(os.path.dirname(sys.executable), "runcast"), "serve",
                 "--port", str(self.port), "--store", f"sqlite:{self.directory / 'runcast.db'}",
                 *self.options],
                stderr=log,
            )
        wait_for_health(f"{self.url}/health", self.process)

    def kill(self) -> None:
        """kill -9: no socket is closed cleanly, no run is ended."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """The servers a test starts (append them); all killed at its end."""
    servers: list[ServerProcess] = []
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def start_server(servers: list[ServerProcess], directory: Path, *options: str) -> ServerProcess:
    server = ServerProcess(directory, list(options))
    servers.append(server)
    server.start()
    return server


@attrs.define
class PageErrors:
    """Uncaught exceptions and unhandled promise rejections of a page: none expected."""

    errors: list[str] = attrs.Factory(list)

    def check(self) -> None:
        assert self.errors == []


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, PageErrors]]:
    context = browser.new_context()
    opened = context.new_page()
    errors = PageErrors()
    opened.on("pageerror", lambda error: errors.errors.append(str(error)))
    try:
        yield opened, errors
    finally:
        context.close()


def replay(base_url: str, run_id: str, token: str | None = None) -> list[tuple[int, str]]:
    """The run's events (index, name) as the server replays them over its WebSocket."""
    headers = None if token is None else {"Authorization": f"Bearer {token}"}
    with connect(base_url.replace("http://", "ws://") + "/workflows/ws",
                 additional_headers=headers) as socket:
        json.loads(socket.recv(timeout=10))
        socket.send(json.dumps({"action": "reconnect", "run_id": run_id, "last_event_index": None}))
        events: list[tuple[int, str]] = []
        while not events or events[-1][1] not in ("WorkflowCompleted", "WorkflowError"):
            frame = json.loads(socket.recv(timeout=10))
            if "event_index" in frame:
                events.append((frame["event_index"], frame["event"]))
        return events


def start_run(base_url: str) -> str:
    """Start a run of the demo workflow over the WebSocket protocol; it goes on after this.

    The socket's queue is unbounded: with websockets' default bound, a run sending faster than
    this reads fills it, the library stops reading the socket, and the close waits 10 s for a
    close frame it no longer reads."""
    with connect(base_url.replace("http://", "ws://") + "/workflows/ws", max_queue=None) as socket:
        json.loads(socket.recv(timeout=10))
        socket.send(json.dumps({"action": "start-workflow", "workflow_id": WORKFLOW}))
        while True:
            frame = json.loads(socket.recv(timeout=10))
            if frame.get("event_index") == 0:
                return str(frame["run_id"])


def shown_events(page: Page) -> list[tuple[int, str]]:
    """The rows of the example page's events table: (index, event name)."""
    rows = page.eval_on_selector_all(
        "#events tr", "rows => rows.map(row => [Number(row.dataset.index), row.dataset.event])"
    )
    return [(int(index), str(name)) for index, name in rows]


def wait_for_reconnecting(page: Page, attempt: int) -> None:
    """Until the page's status says it is reconnecting, at attempt `attempt` or later."""
    later = "|".join(str(n) for n in range(attempt, 10))
    expect(page.locator("#status")).to_have_text(
        re.compile(rf"reconnecting \(attempt ({later}|\d\d+),"), timeout=LONG
    )


def test_the_example_page_follows_a_run_through_a_server_killed_and_started_again(
    serve: list[ServerProcess], tmp_path: Path, page: tuple[Page, PageErrors]
) -> None:
    server = start_server(serve, tmp_path, "--demo-step-delay", "0.25")
    browser_page, errors = page
    browser_page.goto(f"{server.url}/static/example.html")
    expect(browser_page.locator("#workflow")).to_have_value(WORKFLOW)
    browser_page.click("#start")
    expect(browser_page.locator("#events tr").nth(4)).to_be_attached()
    expect(browser_page.locator("#status")).to_have_attribute("data-state", "live")
    run_id = browser_page.locator("#run").inner_text()

    server.kill()
    wait_for_reconnecting(browser_page, 2)  # tries again and again while there is no server
    browser_page.screenshot(path=tmp_path / "example-page-reconnecting.png", full_page=True)
    server.start()
    expect(browser_page.locator("#status")).to_have_attribute("data-state", "ended", timeout=LONG)
    browser_page.screenshot(path=tmp_path / "example-page-ended.png", full_page=True)

    shown = shown_events(browser_page)
    # the restarted server closed the run the kill interrupted, at its next index
    assert shown == replay(server.url, run_id)
    assert [index for index, _ in shown] == list(range(len(shown)))
    assert shown[-1][1] == "WorkflowError"
    expect(browser_page.locator("#runs")).to_contain_text(f"{run_id} {WORKFLOW}: ERROR")
    errors.check()


WATCH = """async ({token, runId, options}) => {
  const { RuncastClient } = await import("/static/runcast.js");
  const client = new RuncastClient({ token, ...options });
  window.seen = [];
  window.states = [];
  window.reasons = [];
  window.outcome = null;
  const watch = client.watch(runId, {
    onEvent: (event) => seen.push([event.event_index, event.event]),
    onStatus: (status) => {
      states.push(status.state);
      if (status.reason) reasons.push(status.reason);
    },
  });
  watch.done.then(() => { outcome = "done"; }, (error) => { outcome = `${error.name}: ${error.message}`; });
}"""

CALL = """async ({token, call}) => {
  const { RuncastClient } = await import("/static/runcast.js");
  const client = new RuncastClient({ token });
  try {
    const result = call === "listRuns" ? await client.listRuns() : await client.start("content-creation-workflow");
    return { ok: call === "listRuns" ? result.map((run) => run.run_id) : result.runId };
  } catch (error) {
    return { error: `${error.name}: ${error.message}` };
  }
}"""


def test_a_watch_with_a_token_authenticates_again_on_every_connection(
    serve: list[ServerProcess], tmp_path: Path, page: tuple[Page, PageErrors]
) -> None:
    server = start_server(serve, tmp_path, "--demo-step-delay", "0.25", "--token", TOKEN)
    browser_page, errors = page
    browser_page.goto(f"{server.url}/static/example.html")
    # the example page takes no token: it says why it cannot list anything
    expect(browser_page.locator("#problem")).to_contain_text("AuthenticationFailed")
    started = browser_page.evaluate(CALL, {"token": TOKEN, "call": "start"})
    run_id = started["ok"]
    browser_page.evaluate(WATCH, {"token": TOKEN, "runId": run_id, "options": {}})
    browser_page.wait_for_function("() => seen.length >= 5")

    server.kill()
    browser_page.wait_for_function("() => states.filter((s) => s === 'reconnecting').length >= 2")
    server.start()
    browser_page.wait_for_function("() => outcome !== null", timeout=LONG)
    browser_page.screenshot(path=tmp_path / "token-watch.png")

    assert browser_page.evaluate("outcome") == "done"
    seen = [(index, name) for index, name in browser_page.evaluate("seen")]
    assert seen == replay(server.url, run_id, TOKEN)
    assert [index for index, _ in seen] == list(range(len(seen)))
    states = browser_page.evaluate("states")
    assert states[0] == "connecting" and states[-1] == "ended"
    assert states.count("live") >= 2 and "reconnecting" in states
    assert browser_page.evaluate(CALL, {"token": TOKEN, "call": "listRuns"}) == {"ok": [run_id]}

    # a wrong token, or none, fails at once: no retries
    for token, why in [("wrong", "the server refused the token"),
                       (None, "the server requires a token, and this client has none")]:
        browser_page.evaluate(WATCH, {"token": token, "runId": run_id, "options": {}})
        browser_page.wait_for_function("() => outcome !== null")
        assert browser_page.evaluate("outcome").startswith(f"AuthenticationFailed: {why}")
        assert browser_page.evaluate("states") == ["connecting", "failed"]
        assert browser_page.evaluate("seen") == []
    refused = browser_page.evaluate(CALL, {"token": "wrong", "call": "listRuns"})
    assert refused["error"].startswith("AuthenticationFailed: the server refused the token")
    errors.check()


def test_the_example_page_follows_a_live_run_through_a_restart_of_its_node(
    redis_url: str, start_cluster: StartCluster, tmp_path: Path, page: tuple[Page, PageErrors]
) -> None:
    """The page follows, on node-0, a run node-1 runs; node-0 stops (SIGTERM: the server closes
    the page's socket, after the PUMP_FLUSH_TIMEOUT of 5 s it gives a socket that follows a run
    of another node) and starts again on its port while the run goes on: the page catches up on
    what it missed and follows the rest live. The run takes 9 s (62 events)."""
    cluster: Cluster = start_cluster(
        redis_url, 2, "--demo-step-delay", "0.75", "--demo-steps", "12"
    )
    follower, owner = cluster.nodes
    run_id = start_run(owner.url)
    browser_page, errors = page
    browser_page.goto(f"{follower.url}/static/example.html")
    browser_page.fill("#run-id", run_id)
    browser_page.click("#follow")
    expect(browser_page.locator("#events tr").nth(2)).to_be_attached()

    follower.process.send_signal(signal.SIGTERM)
    assert follower.process.wait(timeout=20) == 0
    wait_for_reconnecting(browser_page, 1)
    shown_while_away = len(shown_events(browser_page))
    cluster.start(follower.node_id, follower.port)
    assert running(owner.url, run_id), "the run ended before the node was back: make it longer"
    expect(browser_page.locator("#status")).to_have_attribute("data-state", "ended", timeout=LONG)
    browser_page.screenshot(path=tmp_path / "example-page-node-restart.png", full_page=True)

    shown = shown_events(browser_page)
    assert shown == replay(owner.url, run_id)
    assert [index for index, _ in shown] == list(range(62))
    assert shown[-1][1] == "WorkflowCompleted"
    assert shown_while_away < 62
    errors.check()


def running(base_url: str, run_id: str) -> bool:
    with connect(base_url.replace("http://", "ws://") + "/workflows/ws") as socket:
        json.loads(socket.recv(timeout=10))
        socket.send(json.dumps({"action": "reconnect", "run_id": run_id, "last_event_index": None}))
        first = json.loads(socket.recv(timeout=10))
        return first["event"] in ("catch_up", "subscribed")


EVENT_SOURCE = """(runId) => {
  window.sse = { ids: [], frames: [], opens: 0, errors: 0, ended: false };
  const source = new EventSource(`/runs/${encodeURIComponent(runId)}/events`);
  source.onopen = () => { sse.opens += 1; };
  source.onerror = () => { sse.errors += 1; };
  source.onmessage = (message) => {
    sse.ids.push(message.lastEventId);
    sse.frames.push(JSON.parse(message.data));
  };
  source.addEventListener("end", () => { sse.ended = true; source.close(); });
}"""


def test_an_event_source_resumes_by_itself_through_last_event_id_after_a_restart(
    serve: list[ServerProcess], tmp_path: Path, page: tuple[Page, PageErrors]
) -> None:
    server = start_server(serve, tmp_path, "--demo-step-delay", "0.25")
    run_id = start_run(server.url)
    browser_page, errors = page
    browser_page.goto(f"{server.url}/static/example.html")
    browser_page.evaluate(EVENT_SOURCE, run_id)
    browser_page.wait_for_function("() => sse.frames.length >= 5")

    server.kill()
    browser_page.wait_for_function("() => sse.errors >= 1")
    server.start()
    browser_page.wait_for_function("() => sse.ended", timeout=LONG)
    browser_page.screenshot(path=tmp_path / "event-source.png")

    sse = browser_page.evaluate("sse")
    received = [(frame["event_index"], frame["event"]) for frame in sse["frames"]]
    # no duplicate to drop and no gap: the server resumed after the id the browser sent
    assert received == replay(server.url, run_id)
    assert sse["ids"] == [str(index) for index, _ in received]
    assert received[-1][1] == "WorkflowError"
    assert sse["opens"] >= 2
    errors.check()


def test_a_server_gone_silent_is_found_by_pings_and_the_watch_resumes_when_it_answers(
    serve: list[ServerProcess], tmp_path: Path, page: tuple[Page, PageErrors]
) -> None:
    """SIGSTOP: the connection stays open and nothing comes; the watch pings, takes the silence
    for a lost connection, retries (each handshake unanswered within the timeout), and goes
    on when the server does (SIGCONT)."""
    server = start_server(serve, tmp_path, "--demo-step-delay", "0.25")
    run_id = start_run(server.url)
    browser_page, errors = page
    browser_page.goto(f"{server.url}/static/example.html")
    quick = {"pingInterval": 300, "timeout": 1000}
    browser_page.evaluate(WATCH, {"token": None, "runId": run_id, "options": quick})
    browser_page.wait_for_function("() => seen.length >= 5")
    assert server.process is not None
    server.process.send_signal(signal.SIGSTOP)
    try:
        browser_page.wait_for_function("() => states.filter((s) => s === 'reconnecting').length >= 2")
    finally:
        server.process.send_signal(signal.SIGCONT)
    browser_page.wait_for_function("() => outcome !== null", timeout=LONG)
    browser_page.screenshot(path=tmp_path / "silent-server.png")

    assert browser_page.evaluate("outcome") == "done"
    reasons = browser_page.evaluate("reasons")
    assert reasons[0] == f"ws://127.0.0.1:{server.port}/workflows/ws did not answer a ping within 300 ms"
    assert f"ws://127.0.0.1:{server.port}/workflows/ws did not greet within 1000 ms" in reasons
    seen = [(index, name) for index, name in browser_page.evaluate("seen")]
    assert seen == replay(server.url, run_id)
    assert seen[-1][1] == "WorkflowCompleted"
    errors.check()


CALLS = """async () => {
  const runcast = await import("/static/runcast.js");
  const client = new runcast.RuncastClient();
  const outcome = async (promise) => {
    try {
      return { ok: await promise };
    } catch (error) {
      return { error: `${error.name}: ${error.message}`, runcast: error instanceof runcast.RuncastError };
    }
  };
  const thrown = (make) => {
    try {
      make();
      return null;
    } catch (error) {
      return `${error.name}: ${error.message}`;
    }
  };
  const results = {};

  const first = await client.start("content-creation-workflow", { message: "from a page" });
  results.started = [first.started.event_index, first.started.event, first.workflowId];
  const tail = [];
  for await (const event of client.watch(first.runId, { fromIndex: 40 })) tail.push(event.event_index);
  results.tail = tail;
  const all = [];
  for await (const event of client.watch(first.runId)) all.push([event.event_index, event.event]);
  results.all = all;
  const run = await client.getRun(first.runId);
  results.run = [run.status, run.event_count, run.input];

  const second = await client.start("content-creation-workflow");
  const ends = [];
  const followed = client.watch(second.runId, { onEvent: (event) => ends.push([event.event, event.reason ?? null]) });
  results.cancel = await outcome(client.cancel(second.runId, { reason: "enough" }));
  await followed.done;
  results.cancelled = ends.slice(-2);
  results.cancelAgain = await outcome(client.cancel(second.runId));

  const third = await client.start("content-creation-workflow");
  const states = [];
  let delivered = 0;
  const closing = client.watch(third.runId, {
    onEvent: () => {
      delivered += 1;
      if (delivered === 3) closing.close();
    },
    onStatus: (status) => states.push(status.state),
  });
  await closing.done;
  await new Promise((resolve) => setTimeout(resolve, 300));
  results.closed = { delivered, states };

  const early = [];
  for await (const event of client.watch(third.runId)) {
    early.push(event.event_index);
    if (early.length === 2) break;
  }
  results.early = early;

  const refusedStates = [];
  const unknown = client.watch("nope", { onStatus: (status) => refusedStates.push(status.state) });
  results.unknownRun = await outcome(unknown.done);
  results.unknownRunStates = refusedStates;
  results.unknownWorkflow = await outcome(client.start("nope"));
  results.getUnknown = await outcome(client.getRun("nope"));
  results.cancelUnknown = await outcome(client.cancel("nope"));
  results.newest = (await client.listRuns({ limit: 2 })).map((run) => run.run_id);
  results.ids = [third.runId, second.runId];
  results.badLimit = await outcome(client.listRuns({ limit: 0 }));
  results.workflows = (await client.workflows()).map((workflow) => workflow.id);
  results.badUrl = thrown(() => new runcast.RuncastClient({ url: "ftp://example" }));
  results.badFrom = thrown(() => client.watch(first.runId, { fromIndex: -1 }));
  results.bothWays = thrown(() => client.watch(first.runId, { onEvent: () => {} })[Symbol.asyncIterator]());
  results.noServer = await outcome(new runcast.RuncastClient({ url: "http://127.0.0.1:9" }).listRuns());
  return results;
}"""


def test_every_call_of_the_client_and_its_refusals(
    serve: list[ServerProcess], tmp_path: Path, page: tuple[Page, PageErrors]
) -> None:
    server = start_server(serve, tmp_path, "--demo-step-delay", "0.1")
    browser_page, errors = page
    browser_page.goto(f"{server.url}/static/example.html")
    results = browser_page.evaluate(CALLS)

    assert results["started"] == [0, "WorkflowStarted", WORKFLOW]
    assert results["tail"] == [40, 41]  # a watch from event 40 of the running run
    assert [index for index, _ in results["all"]] == list(range(42))  # then its replay
    assert results["all"][-1][1] == "WorkflowCompleted"
    assert results["run"] == ["COMPLETED", 42, "from a page"]
    assert results["cancel"] == {"ok": None}
    assert results["cancelled"] == [["WorkflowCancelled", "enough"], ["WorkflowCompleted", "enough"]]
    assert results["cancelAgain"]["error"].startswith("Refused: ")
    # closed after its third event: nothing more is delivered, the page is told
    assert results["closed"] == {"delivered": 3, "states": ["connecting", "live", "closed"]}
    assert results["early"] == [0, 1]
    assert results["unknownRun"] == {"error": "RunNotFound: Run nope not found", "runcast": True}
    assert results["unknownRunStates"] == ["connecting", "failed"]
    assert results["unknownWorkflow"] == {
        "error": "WorkflowNotFound: Workflow nope not found", "runcast": True
    }
    assert results["getUnknown"]["error"].startswith("RunNotFound: ")
    assert results["cancelUnknown"] == {"error": "RunNotFound: Run nope not found", "runcast": True}
    assert results["newest"] == results["ids"]
    assert results["badLimit"]["error"].startswith("Refused: limit")
    assert results["workflows"] == [WORKFLOW]
    assert results["badUrl"] == (
        'TypeError: the server URL must be http://HOST:PORT or https://..., got "ftp://example"'
    )
    assert results["badFrom"] == "RangeError: fromIndex must be an integer, 0 or more, got -1"
    assert results["bothWays"] == (
        "TypeError: this watch hands its events to onEvent; iterate a watch made without it"
    )
    assert results["noServer"]["error"].startswith("ConnectionLost: cannot reach http://127.0.0.1:9")
    browser_page.screenshot(path=tmp_path / "calls.png")
    errors.check()


# -- the cursor and the backoff, without sockets ------------------------------------------------

LOAD_MODULE = """async (source) => {
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  window.runcast = await import(url);
}"""

@pytest.fixture(scope="module")
def module_page(browser: Browser) -> Iterator[Page]:
    """A blank page with runcast.js loaded as `window.runcast`."""
    context = browser.new_context()
    blank = context.new_page()
    blank.evaluate(LOAD_MODULE, (STATIC_FOLDER / "runcast.js").read_text())
    try:
        yield blank
    finally:
        context.close()


def js_cursor(page: Page, from_index: int) -> None:
    page.evaluate("(fromIndex) => { window.cursor = new runcast.WatchCursor('run-1', fromIndex); }",
                  from_index)


def js_reconnect(page: Page) -> dict[str, Any]:
    return dict(page.evaluate("() => cursor.reconnect()"))


def js_feed(page: Page, frames: list[dict[str, Any]]) -> tuple[list[int], str]:
    result = page.evaluate(
        """(frames) => {
          const delivered = [];
          for (const frame of frames) {
            const step = cursor.receive(frame);
            if (step.action === "deliver") delivered.push(step.event.event_index);
            else if (step.action === "reconnect") return { delivered, ending: "reconnect" };
            else if (step.action === "fail") return { delivered, ending: `fail: ${step.error.name}: ${step.error.message}` };
            if (cursor.finished) return { delivered, ending: "finished" };
          }
          return { delivered, ending: "dropped" };
        }""",
        frames,
    )
    return list(result["delivered"]), str(result["ending"])


@settings(max_examples=60, deadline=None)
@given(data=st.data(), count=st.integers(1, 40), from_index=st.integers(0, 45))
def test_the_cursor_delivers_every_event_once_in_order_over_cut_connections(
    module_page: Page, data: st.DataObject, count: int, from_index: int
) -> None:
    """The scenario of tests/client/test_cursor.py, on runcast.js's WatchCursor: the server's
    answers to each reconnect, live events (one lost now and then), frames of other runs,
    duplicates, and the connection cut anywhere; the last connection is not cut."""
    js_cursor(module_page, from_index)
    existing = data.draw(st.integers(1, count), label="events at the first connection")
    delivered: list[int] = []
    finished = False
    for connection in range(LAST_CONNECTION + 1):
        if connection == LAST_CONNECTION:
            existing = count  # the run is over, and this connection is not cut
        frames = server_answer(js_reconnect(module_page), count, existing)
        if frames[0]["event"] not in ("replay", "error"):
            live_until = data.draw(st.integers(existing, count), label="live events")
            live = [event(i, count) for i in range(existing, live_until)]
            if len(live) > 0 and data.draw(st.booleans(), label="lose a live event"):
                del live[data.draw(st.integers(0, len(live) - 1), label="lost")]
            frames += live
            existing = live_until
        for _ in range(data.draw(st.integers(0, 3), label="noise")):
            noise: dict[str, Any] = data.draw(NOISE)
            frames.insert(data.draw(st.integers(0, len(frames)), label="noise at"), noise)
        if len(frames) > 0 and data.draw(st.booleans(), label="repeat a frame"):
            # a duplicate comes after the frame it repeats
            original = data.draw(st.integers(0, len(frames) - 1), label="repeated")
            at = data.draw(st.integers(original + 1, len(frames)), label="repeated at")
            frames.insert(at, frames[original])
        last_try = connection == LAST_CONNECTION
        cut = len(frames) if last_try else data.draw(st.integers(0, len(frames)), label="cut")
        got, ending = js_feed(module_page, frames[:cut])
        delivered += got
        assert not ending.startswith("fail"), ending
        finished = bool(module_page.evaluate("() => cursor.finished"))
        if finished:
            break
        existing = data.draw(st.integers(existing, count), label="events meanwhile")
    assert finished
    assert delivered == list(range(from_index, count))


@pytest.mark.parametrize(
    ("error", "ending"),
    [
        (f"Run {RUN} not found", f"fail: RunNotFound: Run {RUN} not found"),
        ("Workflow w not found", "fail: WorkflowNotFound: Workflow w not found"),
        (f"the history of run {RUN} is gone (kept 60 s)",
         f"fail: HistoryGone: the history of run {RUN} is gone (kept 60 s)"),
        ("internal error: boom", "fail: ServerError: internal error: boom"),
        ("the store cannot be read, try again later: Redis is down", "reconnect"),
        ("the server is shutting down", "reconnect"),
        (f"run {RUN} is lost: the store cannot record its end: disk I/O error", "reconnect"),
        ("last_event_index must be an integer, got string",
         "fail: Refused: last_event_index must be an integer, got string"),
    ],
)
def test_an_error_frame_ends_the_watch_or_asks_for_a_reconnect(
    module_page: Page, error: str, ending: str
) -> None:
    js_cursor(module_page, 0)
    assert js_feed(module_page, [{"event": "error", "error": error}]) == ([], ending)


def test_a_from_index_the_run_has_not_reached_waits_for_it(module_page: Page) -> None:
    js_cursor(module_page, 10)
    beyond = {"event": "error", "error": f"last_event_index 9 is beyond the last event of run"
              f" {RUN} (it has 4 events, indices 0..3)"}
    assert js_feed(module_page, [beyond]) == ([], "reconnect")
    assert js_reconnect(module_page)["last_event_index"] == 3
    assert js_feed(module_page, [event(i, 20) for i in range(4, 12)]) == ([10, 11], "dropped")
    lost = {"event": "error", "error": f"last_event_index 11 is beyond the last event of run"
            f" {RUN} (it has 8 events, indices 0..7)"}
    delivered, ending = js_feed(module_page, [lost])
    assert delivered == [] and ending.startswith("fail: Refused: last_event_index 11 is beyond")


def test_the_backoff_waits_longer_with_jitter_and_gives_up_after_its_budget(
    module_page: Page,
) -> None:
    result = module_page.evaluate(
        """() => {
          const backoff = new runcast.Backoff({ first: 100, ceiling: 1000, giveUpAfter: 5000 });
          const spans = [0, 1, 2, 3, 4, 5, 50].map((attempt) => backoff.span(attempt));
          const low = new runcast.Retrying(backoff, () => 0);
          const high = new runcast.Retrying(backoff, () => 0.999999);
          const waits = [0, 10, 20, 30, 40].map((now) => [low.failed(now), high.failed(now)]);
          const late = [low.failed(4990), low.failed(5000)];
          low.answered();
          const afresh = low.failed(10_000);
          const refusals = [{ first: 0 }, { first: 100, ceiling: 50 }, { factor: 0.5 },
                            { giveUpAfter: -1 }, { first: NaN }].map((options) => {
            try { new runcast.Backoff(options); return null; } catch (error) { return error.message; }
          });
          return { spans, waits, late, afresh, refusals };
        }"""
    )
    assert result["spans"] == [100, 200, 400, 800, 1000, 1000, 1000]
    for attempt, (low, high) in enumerate(result["waits"]):
        span = min(100 * 2**attempt, 1000)
        assert low == span / 2 and span / 2 < high < span
    assert result["late"] == [10, None]  # the wait never outlasts the budget; then it gives up
    assert result["afresh"] == 50  # an answer starts the waits and the budget again
    assert result["refusals"] == [
        "backoff.first must be a number, 1 or more, got 0",
        "backoff.ceiling must be a number, 100 or more, got 50",
        "backoff.factor must be a number, 1 or more, got 0.5",
        "backoff.giveUpAfter must be a number, 0 or more, got -1",
        "backoff.first must be a number, 1 or more, got NaN",
    ]
