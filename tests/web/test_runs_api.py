"""The HTTP routes of web/runs_api.py over a real server: health, workflows, runs, cancel, token.

Runs that must be live while a request is made use a workflow whose step waits on a `trio.Event`
the test holds, so their status and event count are known exactly.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from actors import Step, StepContext, Workflow, WorkflowCatalog
from actors.workflows.examples.content_creation import WORKFLOW_ID as DEMO
from actors.workflows.examples.content_creation import WORKFLOW_NAME as DEMO_NAME
from actors.workflows.examples.content_creation import content_creation_workflow
from tests.clients import JsonSocket, ws_client
from tests.conftest import FAST_STEP_DELAY, RunningServer, StartServer

DEMO_EVENTS = 42
GATED = "gated"
TICKS = 2
HELD = TICKS + 2  # events a gated run has while it waits at its gate


def make_catalog(release: trio.Event) -> WorkflowCatalog:
    async def hold(ctx: StepContext) -> str:
        for tick in range(TICKS):
            await ctx.progress(f"tick {tick}")
        await release.wait()
        return "held"

    catalog = WorkflowCatalog()
    catalog.add(content_creation_workflow(FAST_STEP_DELAY))
    catalog.add(Workflow(GATED, "Gated", [Step("hold", hold)], description="waits for the test"))
    return catalog


@pytest.fixture
def release() -> trio.Event:
    return trio.Event()


@pytest.fixture
async def gserver(start_server: StartServer, release: trio.Event) -> RunningServer:
    return await start_server(catalog=make_catalog(release))


async def run_demo(client: JsonSocket, message: str = "") -> str:
    started = await client.start(DEMO, message=message, session_id="s-demo", user_id="u-demo")
    await client.recv_until_terminal()
    return str(started["run_id"])


async def start_held(client: JsonSocket) -> str:
    started = await client.start(GATED)
    with trio.fail_after(10):
        while (await client.recv())["event_index"] != HELD - 1:
            pass
    return str(started["run_id"])


def ids(body: dict[str, Any]) -> list[str]:
    return [r["run_id"] for r in body["runs"]]


# -- health and workflows ------------------------------------------------------------------------


async def test_health_reports_ok_and_live_runs(gserver: RunningServer, release: trio.Event) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http, ws_client(gserver.ws_url) as ws:
        assert (await http.get("/health")).json() == {"status": "healthy", "live_runs": 0, "store": "ok"}
        await start_held(ws)
        answer = await http.get("/health")
        assert answer.status_code == 200
        assert answer.json() == {"status": "healthy", "live_runs": 1, "store": "ok"}
        release.set()
        await ws.recv_until_terminal()


async def test_workflows_lists_the_demo(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get("/workflows")
    assert answer.status_code == 200
    workflows = answer.json()
    assert [w["id"] for w in workflows] == [DEMO]
    assert workflows[0]["name"] == DEMO_NAME
    assert isinstance(workflows[0]["description"], str) and workflows[0]["description"]


# -- runs ----------------------------------------------------------------------------------------


async def test_runs_lists_newest_first_with_live_and_final_counts(
    gserver: RunningServer, release: trio.Event
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http, ws_client(gserver.ws_url) as ws:
        assert (await http.get("/runs")).json() == {"runs": [], "next": None}
        done = await run_demo(ws, message="first")
        live = await start_held(ws)
        runs = (await http.get("/runs")).json()["runs"]
        assert [r["run_id"] for r in runs] == [live, done]
        held, finished = runs
        assert held["status"] == "RUNNING" and held["event_count"] == HELD
        assert held["workflow_id"] == GATED and held["finished_at"] is None
        assert finished["status"] == "COMPLETED" and finished["event_count"] == DEMO_EVENTS
        assert finished["workflow_id"] == DEMO and finished["workflow_name"] == DEMO_NAME
        assert finished["input"] == "first"
        assert finished["session_id"] == "s-demo" and finished["user_id"] == "u-demo"
        assert finished["finished_at"] >= finished["created_at"]
        release.set()
        await ws.recv_until_terminal()
        runs = (await http.get("/runs")).json()["runs"]
    assert [(r["run_id"], r["status"], r["event_count"]) for r in runs] == [
        (live, "COMPLETED", HELD + 3),
        (done, "COMPLETED", DEMO_EVENTS),
    ]


async def test_runs_limit_and_status_filters(gserver: RunningServer, release: trio.Event) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http, ws_client(gserver.ws_url) as ws:
        first = await run_demo(ws)
        second = await run_demo(ws)
        live = await start_held(ws)
        assert ids((await http.get("/runs", params={"limit": 1})).json()) == [live]
        assert ids((await http.get("/runs", params={"limit": 2})).json()) == [live, second]
        assert ids((await http.get("/runs", params={"limit": 1000})).json()) == [live, second, first]
        assert ids((await http.get("/runs", params={"status": "running"})).json()) == [live]
        assert ids((await http.get("/runs", params={"status": "RUNNING"})).json()) == [live]
        completed = (await http.get("/runs", params={"status": "completed"})).json()
        assert ids(completed) == [second, first]
        both = await http.get("/runs", params={"status": "completed", "limit": 1})
        assert ids(both.json()) == [second]
        assert ids((await http.get("/runs", params={"status": "error"})).json()) == []
        release.set()
        await ws.recv_until_terminal()


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": "abc"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"status": "bogus"}, "status"),
        ({"status": ""}, "status"),
        ({"status": "done", "limit": "5"}, "status"),
    ],
)
async def test_runs_bad_query_parameters_get_422_naming_the_parameter(
    server: RunningServer, params: dict[str, str], named: str
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get("/runs", params=params)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail.startswith(named) and repr(params[named]) in detail


LIMIT_RULE = "limit must be an integer from 1 to 1000 in digits 0-9, got "
STATUS_RULE = "status must be one of RUNNING, COMPLETED, ERROR, CANCELLED (any case), got "


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("limit=%C2%B2", LIMIT_RULE + "'²'"),  # a digit to str.isdigit, not to int()
        ("limit=%D9%A1%D9%A2", LIMIT_RULE + "'١٢'"),  # Arabic-Indic 12: int() reads it
        ("limit=" + "1" * 5000, LIMIT_RULE + repr("1" * 40) + "... (5000 characters)"),
        ("limit=0" + "0" * 5000, LIMIT_RULE + repr("0" * 40) + "... (5001 characters)"),
        ("status=runn%C4%B1ng", STATUS_RULE + "'runnıng'"),  # a dotless i upper-cases to I
        ("limit=1&limit=abc", "limit must be given at most once, got 2 values"),
        ("status=running&status=error", "status must be given at most once, got 2 values"),
    ],
    ids=["superscript", "arabic-indic", "5000 digits", "5001 zeros", "dotless i", "limit twice",
         "status twice"],
)
async def test_runs_query_parameters_are_ascii_within_bounds_and_given_once(
    server: RunningServer, query: str, detail: str
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get("/runs?" + query)
    assert answer.status_code == 422, answer.text
    assert answer.json() == {"detail": detail}


# -- pages of runs: workflow_id, q, before / next; counts ----------------------------------------

QUICK = ("quick-a", "quick-b")


def quick_catalog() -> WorkflowCatalog:
    async def done(ctx: StepContext) -> str:
        return "done"

    catalog = WorkflowCatalog()
    for workflow_id in QUICK:
        catalog.add(Workflow(workflow_id, workflow_id, [Step("done", done)]))
    return catalog


@pytest.fixture
async def qserver(start_server: StartServer) -> RunningServer:
    """A server of two workflows whose runs finish at once."""
    return await start_server(catalog=quick_catalog())


async def run_quick(client: JsonSocket, workflow_id: str) -> str:
    started = await client.start(workflow_id)
    await client.recv_until_terminal()
    return str(started["run_id"])


async def pages(http: httpx.AsyncClient, **params: Any) -> list[list[str]]:
    """Every page of GET /runs with `params`, following `next` until it is null."""
    listed: list[list[str]] = []
    before: dict[str, str] = {}
    while True:
        answer = await http.get("/runs", params={**params, **before})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        listed.append(ids(body))
        if body["next"] is None:
            assert len(body["runs"]) < int(params.get("limit", 100)) or listed[-1] == []
            return listed
        assert len(body["runs"]) == int(params["limit"])
        before = {"before": body["next"]}


async def test_next_and_before_page_through_every_run_once_while_runs_are_created(
    qserver: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=qserver.base_url) as http, ws_client(qserver.ws_url) as ws:
        made = [await run_quick(ws, QUICK[n % 2]) for n in range(7)]
        newest_first = made[::-1]
        assert ids((await http.get("/runs")).json()) == newest_first
        assert await pages(http, limit=3) == [newest_first[:3], newest_first[3:6], newest_first[6:]]
        assert await pages(http, limit=7) == [newest_first, []]  # a full page: more may follow
        # a run created between two pages appears in neither, and no run repeats or is skipped
        first = (await http.get("/runs", params={"limit": 4})).json()
        created = await run_quick(ws, QUICK[0])
        rest = (await http.get("/runs", params={"limit": 4, "before": first["next"]})).json()
        assert ids(first) + ids(rest) == newest_first and rest["next"] is None
        assert ids((await http.get("/runs", params={"limit": 1})).json()) == [created]
        # the filters, alone and together, page the same way
        by_workflow = [r for r in newest_first if made.index(r) % 2 == 0]
        assert sum(await pages(http, limit=2, workflow_id=QUICK[0]), []) == [created, *by_workflow]
        assert sum(await pages(http, limit=2, workflow_id="nope"), []) == []
        prefix = made[3][:2]
        started_so = [r for r in [created, *newest_first] if r.startswith(prefix)]
        assert sum(await pages(http, limit=1, q=prefix), []) == started_so
        assert sum(await pages(http, limit=1, q=made[3]), []) == [made[3]]
        assert sum(await pages(http, limit=2, q=made[3], workflow_id=QUICK[0]), []) == []
        completed = await pages(http, limit=5, status="completed", workflow_id=QUICK[1])
        assert sum(completed, []) == [r for r in newest_first if made.index(r) % 2 == 1]


async def test_runs_counts_gives_every_status_over_the_store(
    gserver: RunningServer, release: trio.Event
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http, ws_client(gserver.ws_url) as ws:
        zero = {"RUNNING": 0, "COMPLETED": 0, "ERROR": 0, "CANCELLED": 0}
        assert (await http.get("/runs/counts")).json() == {"counts": zero}
        await run_demo(ws)
        live = await start_held(ws)
        assert (await http.get("/runs/counts")).json()["counts"] == {
            **zero, "RUNNING": 1, "COMPLETED": 1
        }
        assert (await http.post(f"/workflows/{GATED}/runs/{live}/cancel")).status_code == 200
        await ws.recv_until_terminal()
        assert (await http.get("/runs/counts")).json()["counts"] == {
            **zero, "COMPLETED": 1, "CANCELLED": 1
        }
        release.set()


def cursor_of(created_at: object, run_id: object) -> str:
    """A cursor in the server's spelling, of any values."""
    text = json.dumps([created_at, run_id], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


BEFORE_RULE = "before must be the `next` of an earlier GET /runs answer, as it was, got "


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("workflow_id=", "workflow_id must be a workflow id, 1 to 200 characters, got ''"),
        ("workflow_id=" + "w" * 201, "workflow_id must be a workflow id, 1 to 200 characters, got "
         + repr("w" * 40) + "... (201 characters)"),
        ("workflow_id=a&workflow_id=b", "workflow_id must be given at most once, got 2 values"),
        ("q=", "q must be the start of a run id, 1 to 100 characters, got ''"),
        ("q=" + "r" * 101, "q must be the start of a run id, 1 to 100 characters, got "
         + repr("r" * 40) + "... (101 characters)"),
        ("q=a&q=b", "q must be given at most once, got 2 values"),
        ("before=", BEFORE_RULE + "''"),
        ("before=nope", BEFORE_RULE + "'nope'"),
        ("before=" + cursor_of(1.5, "r") + "=", BEFORE_RULE + repr(cursor_of(1.5, "r") + "=")),
        ("before=" + cursor_of(1, "r"), BEFORE_RULE + repr(cursor_of(1, "r"))),
        ("before=" + cursor_of(1.5, ""), BEFORE_RULE + repr(cursor_of(1.5, ""))),
        ("before=" + cursor_of(1.5, 7), BEFORE_RULE + repr(cursor_of(1.5, 7))),
        ("before=" + cursor_of("1.5", "r"), BEFORE_RULE + repr(cursor_of("1.5", "r"))),
        ("before=" + cursor_of(1.5, "r") + "&before=" + cursor_of(1.5, "r"),
         "before must be given at most once, got 2 values"),
    ],
    ids=["empty workflow", "long workflow", "workflow twice", "empty q", "long q", "q twice",
         "empty before", "not base64", "padded", "integer time", "empty run id",
         "number run id", "text time", "before twice"],
)
async def test_runs_filters_and_cursor_are_checked_strictly(
    server: RunningServer, query: str, detail: str
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        answer = await http.get("/runs?" + query)
    assert answer.status_code == 422, answer.text
    assert answer.json() == {"detail": detail}


async def test_a_cursor_of_the_servers_spelling_is_taken(server: RunningServer) -> None:
    """The test's own spelling of a cursor (`cursor_of`) is the server's: the 422s above refuse
    what they change, not the spelling."""
    async with httpx.AsyncClient(base_url=server.base_url) as http, ws_client(server.ws_url) as ws:
        run_id = await run_demo(ws)
        created_at = (await http.get(f"/runs/{run_id}")).json()["created_at"]
        page = (await http.get("/runs", params={"limit": 1})).json()
        assert page["next"] == cursor_of(created_at, run_id)
        assert ids((await http.get("/runs", params={"before": page["next"]})).json()) == []
        after = {"before": cursor_of(created_at + 1, run_id)}
        assert ids((await http.get("/runs", params=after)).json()) == [run_id]


async def test_runs_limit_takes_leading_zeros(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http, ws_client(server.ws_url) as ws:
        first, second = await run_demo(ws), await run_demo(ws)
        assert ids((await http.get("/runs?limit=" + "0" * 5000 + "1")).json()) == [second]
        assert ids((await http.get("/runs?limit=0002")).json()) == [second, first]


async def test_get_run_live_finished_and_unknown(gserver: RunningServer, release: trio.Event) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http, ws_client(gserver.ws_url) as ws:
        done = await run_demo(ws, message="hi")
        live = await start_held(ws)
        answer = await http.get(f"/runs/{done}")
        assert answer.status_code == 200
        body = answer.json()
        assert body["run_id"] == done and body["status"] == "COMPLETED"
        assert body["event_count"] == DEMO_EVENTS and body["input"] == "hi"
        assert body["finished_at"] is not None
        held = (await http.get(f"/runs/{live}")).json()
        assert held["status"] == "RUNNING" and held["event_count"] == HELD
        missing = await http.get("/runs/no-such-run")
        assert missing.status_code == 404
        assert missing.json() == {"detail": "Run no-such-run not found"}
        release.set()
        await ws.recv_until_terminal()


# -- cancel --------------------------------------------------------------------------------------


async def test_cancel_over_http_ends_the_run_for_websocket_followers(
    gserver: RunningServer,
) -> None:
    async with (
        httpx.AsyncClient(base_url=gserver.base_url) as http,
        ws_client(gserver.ws_url) as starter,
        ws_client(gserver.ws_url) as follower,
    ):
        run_id = await start_held(starter)
        await follower.send({"action": "reconnect", "run_id": run_id, "last_event_index": HELD - 1})
        assert (await follower.recv())["event"] == "subscribed"
        answer = await http.post(f"/workflows/{GATED}/runs/{run_id}/cancel")
        assert answer.status_code == 200
        assert answer.json() == {"run_id": run_id, "status": "cancelling", "cancelled": True}
        for client in (starter, follower):
            end = await client.recv_until_terminal()
            assert [f["event"] for f in end] == ["WorkflowCancelled", "WorkflowCompleted"]
            assert [f["event_index"] for f in end] == [HELD, HELD + 1]
        record = (await http.get(f"/runs/{run_id}")).json()
        assert record["status"] == "CANCELLED" and record["event_count"] == HELD + 2
        again = await http.post(f"/workflows/{GATED}/runs/{run_id}/cancel")
        assert again.status_code == 409
        assert run_id in again.json()["detail"] and "CANCELLED" in again.json()["detail"]


async def test_cancel_of_a_completed_run_is_409(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http, ws_client(server.ws_url) as ws:
        done = await run_demo(ws)
        answer = await http.post(f"/workflows/{DEMO}/runs/{done}/cancel")
        assert answer.status_code == 409
        assert "COMPLETED" in answer.json()["detail"]
        assert (await http.get(f"/runs/{done}")).json()["status"] == "COMPLETED"


async def test_cancel_of_unknown_run_or_in_the_wrong_workflow_is_404(
    gserver: RunningServer, release: trio.Event
) -> None:
    async with httpx.AsyncClient(base_url=gserver.base_url) as http, ws_client(gserver.ws_url) as ws:
        unknown = await http.post(f"/workflows/{DEMO}/runs/nope/cancel")
        assert unknown.status_code == 404
        assert unknown.json() == {"detail": "Run nope not found"}
        live = await start_held(ws)
        wrong = await http.post(f"/workflows/{DEMO}/runs/{live}/cancel")
        assert wrong.status_code == 404
        assert live in wrong.json()["detail"] and DEMO in wrong.json()["detail"]
        # the refused cancel changed nothing: the run is still running and completes normally
        assert (await http.get(f"/runs/{live}")).json()["status"] == "RUNNING"
        release.set()
        end = await ws.recv_until_terminal()
    assert end[-1]["event"] == "WorkflowCompleted" and end[-1].get("status") != "cancelled"


# -- token -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}])
async def test_with_a_token_every_route_but_health_needs_the_bearer_header(
    start_server: StartServer, headers: dict[str, str]
) -> None:
    srv = await start_server(token="s3cret")
    run_id = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=srv.base_url, headers=headers) as http:
        health = await http.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "healthy"
        for method, path in [
            ("GET", "/workflows"),
            ("GET", "/runs"),
            ("GET", "/runs?limit=1&workflow_id=x&q=a"),
            ("GET", "/runs/counts"),
            ("GET", f"/runs/{run_id}"),
            ("POST", f"/workflows/{DEMO}/runs/{run_id}/cancel"),
        ]:
            answer = await http.request(method, path)
            assert answer.status_code == 401, path
            assert "Bearer" in answer.json()["detail"]


async def test_with_a_token_the_right_bearer_header_is_let_in(start_server: StartServer) -> None:
    srv = await start_server(token="s3cret")
    headers = {"Authorization": "Bearer s3cret"}
    async with httpx.AsyncClient(base_url=srv.base_url, headers=headers) as http:
        assert (await http.get("/workflows")).status_code == 200
        assert (await http.get("/runs")).json() == {"runs": [], "next": None}
        assert (await http.get("/runs/counts")).status_code == 200
        assert (await http.get("/runs/x")).status_code == 404
        assert (await http.post(f"/workflows/{DEMO}/runs/x/cancel")).status_code == 404


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
async def test_the_bearer_scheme_is_case_insensitive(start_server: StartServer, scheme: str) -> None:
    srv = await start_server(token="s3cret")
    async with httpx.AsyncClient(base_url=srv.base_url) as http:
        headers = {"Authorization": f"{scheme} s3cret"}
        assert (await http.get("/workflows", headers=headers)).status_code == 200
        assert (await http.post(f"/workflows/{DEMO}/runs/x/cancel", headers=headers)).status_code == 404
        for refused in (f"{scheme} S3CRET", f"{scheme}s3cret", "s3cret", "Bearer s3cr\u00e9t"):
            answer = await http.get("/workflows", headers={b"Authorization": refused.encode()})
            assert answer.status_code == 401, refused
            assert answer.headers["www-authenticate"] == "Bearer"
    ws_headers = [(b"Authorization", f"{scheme} s3cret".encode())]
    async with open_websocket_url(srv.ws_url, extra_headers=ws_headers) as ws:
        client = JsonSocket(ws, json.loads(await ws.get_message()))
        started = await client.start(DEMO)
        assert started["event"] == "WorkflowStarted", started
        assert (await client.recv_until_terminal())[-1]["event"] == "WorkflowCompleted"


async def test_get_run_right_after_the_terminal_event_is_complete(server: RunningServer) -> None:
    """A client that has seen WorkflowCompleted and asks at once gets the final record:
    status COMPLETED, every event counted, and a finished_at."""
    async with httpx.AsyncClient(base_url=server.base_url) as http, ws_client(server.ws_url) as ws:
        for _ in range(5):
            done = await run_demo(ws)
            body = (await http.get(f"/runs/{done}")).json()
            assert body["status"] == "COMPLETED" and body["event_count"] == DEMO_EVENTS
            assert body["finished_at"] is not None
            listed = (await http.get("/runs", params={"limit": 1})).json()["runs"][0]
            assert listed["run_id"] == done and listed["finished_at"] is not None
