"""client/cli.py as a user runs it: `runcast runs ...` subprocesses against a real server. Each
command's human and --json output; tail follows a live run through dropped connections and ends
with status 0 at its terminal event; an unknown run, a history past --retention, a wrong or
missing token and an unreachable server end with status 1 and one line."""

from __future__ import annotations

import json
import os
import random
import sys
from typing import Any

import attrs
import trio

from client import RuncastClient
from tests.client.relay import Relay
from tests.conftest import RunningServer, StartServer, free_port

WORKFLOW = "content-creation-workflow"
EVENTS = 42
COMMAND = [os.path.join(os.path.dirname(sys.executable), "runcast"), "runs"]


@attrs.frozen
class Result:
    status: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.lines]


async def runs(*args: str, url: str | None = None, token: str | None = None) -> Result:
    """`runcast runs ARGS`, with RUNCAST_URL and RUNCAST_TOKEN set to `url` and `token`."""
    env = {k: v for k, v in os.environ.items() if k not in ("RUNCAST_URL", "RUNCAST_TOKEN")}
    if url is not None:
        env["RUNCAST_URL"] = url
    if token is not None:
        env["RUNCAST_TOKEN"] = token
    with trio.fail_after(60):
        done = await trio.run_process(
            [*COMMAND, *args], capture_stdout=True, capture_stderr=True, check=False, env=env
        )
    return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


def indices(lines: list[str]) -> list[int]:
    return [int(line.split()[0]) for line in lines]


async def test_start_tail_list_show_for_people_and_for_scripts(server: RunningServer) -> None:
    url = server.base_url
    started = await runs("start", WORKFLOW, "--message", "from the shell", url=url)
    assert started.status == 0 and started.err == ""
    run_id = started.out.strip()
    tail = await runs("tail", run_id, url=url)
    assert tail.status == 0, tail.err
    assert indices(tail.lines) == list(range(EVENTS))
    assert tail.lines[0].split()[1] == "WorkflowStarted"
    assert tail.lines[-1].split()[1] == "WorkflowCompleted"
    assert "research: tick 1/2" in tail.out
    scripted = await runs("tail", run_id, "--json", "--from", "40", url=url)
    events = scripted.json_lines()
    assert [e["event_index"] for e in events] == [40, 41] and events[1]["run_id"] == run_id

    listed = await runs("list", url=url)
    assert listed.status == 0
    assert listed.lines[0].split() == ["RUN", "WORKFLOW", "STATUS", "EVENTS", "CREATED", "FINISHED"]
    assert listed.lines[1].split()[:4] == [run_id, WORKFLOW, "COMPLETED", str(EVENTS)]
    as_json = (await runs("list", "--json", "--status", "COMPLETED", url=url)).json_lines()
    assert [run["run_id"] for run in as_json] == [run_id]

    shown = await runs("show", run_id, url=url)
    assert shown.status == 0
    assert "status:" in shown.out and "COMPLETED" in shown.out and "from the shell" in shown.out
    record = (await runs("show", run_id, "--json", url=url)).json_lines()
    assert len(record) == 1 and record[0]["event_count"] == EVENTS


async def test_list_filters_and_limits(server: RunningServer) -> None:
    url = server.base_url
    async with RuncastClient(url) as client:
        started = [(await client.start(WORKFLOW)).run_id for _ in range(3)]
    newest_two = (await runs("list", "--json", "--limit", "2", url=url)).json_lines()
    assert [run["run_id"] for run in newest_two] == started[:0:-1]
    found = (await runs("list", "--json", "--search", started[0][:13], url=url)).json_lines()
    assert [run["run_id"] for run in found] == [started[0]]
    of_workflow = (await runs("list", "--json", "--workflow", WORKFLOW, url=url)).json_lines()
    assert [run["run_id"] for run in of_workflow] == started[::-1]
    assert (await runs("list", "--workflow", "nope", url=url)).lines == ["no runs"]
    no_limit = await runs("list", "--limit", "0", url=url)
    assert no_limit.status == 2 and "--limit" in no_limit.err


async def test_start_follow_prints_the_run_id_then_its_events(server: RunningServer) -> None:
    followed = await runs("start", WORKFLOW, "--follow", "--json", url=server.base_url)
    assert followed.status == 0, followed.err
    ids, *events = followed.json_lines()
    assert [event["event_index"] for event in events] == list(range(EVENTS))
    assert {event["run_id"] for event in events} == {ids["run_id"]}


async def test_tail_follows_a_live_run_through_dropped_connections(
    start_server: StartServer,
) -> None:
    server = await start_server(demo_step_delay=0.15)
    # some connections go uncut: once the run is over, a reconnect replays it from index 0
    relay = Relay(server.port, random.Random(7), cut_share=0.6, cut_within=(1_000, 6_000))
    async with trio.open_nursery() as nursery:
        await nursery.start(relay.serve)
        async with RuncastClient(server.base_url) as client:
            run = await client.start(WORKFLOW)
        tail = await runs("tail", run.run_id, url=relay.url)
        nursery.cancel_scope.cancel()
    assert tail.status == 0, tail.err
    assert indices(tail.lines) == list(range(EVENTS))
    assert relay.cuts >= 3


async def test_cancel(start_server: StartServer) -> None:
    server = await start_server(demo_step_delay=1.0)
    url = server.base_url
    run_id = (await runs("start", WORKFLOW, url=url)).out.strip()
    cancelled = await runs("cancel", run_id, "--reason", "not today", url=url)
    assert (cancelled.status, cancelled.out) == (0, f"cancelling run {run_id}\n")
    events = (await runs("tail", run_id, "--json", url=url)).json_lines()
    assert [e["event"] for e in events[-2:]] == ["WorkflowCancelled", "WorkflowCompleted"]
    assert events[-1]["reason"] == "not today"
    again = await runs("cancel", run_id, url=url)
    assert again.status == 1
    assert again.err == f"runcast: Run {run_id} is already finished (CANCELLED)\n"


async def test_an_unknown_run_or_workflow_is_one_line_and_status_1(server: RunningServer) -> None:
    for args in (("tail", "nope"), ("show", "nope"), ("cancel", "nope")):
        result = await runs(*args, url=server.base_url)
        assert (result.status, result.out, result.err) == (1, "", "runcast: Run nope not found\n")
    result = await runs("start", "nope", url=server.base_url)
    assert (result.status, result.err) == (1, "runcast: Workflow nope not found\n")


async def test_a_gone_history_is_one_line_and_status_1(
    start_server: StartServer, redis_url: str
) -> None:
    server = await start_server(store=redis_url, retention=0.3, demo_step_delay=0.0)
    run_id = (await runs("start", WORKFLOW, "--follow", url=server.base_url)).lines[0]
    await trio.sleep(1.0)  # past the retention
    result = await runs("tail", run_id, url=server.base_url)
    assert result.status == 1 and result.out == ""
    assert result.err == (
        f"runcast: the history of run {run_id} is gone: it finished longer ago than the server"
        " keeps histories (--retention)\n"
    )


async def test_tokens(start_server: StartServer) -> None:
    server = await start_server(token="s3cret")
    url = server.base_url
    run_id = (await runs("start", WORKFLOW, "--follow", url=url, token="s3cret")).lines[0]
    assert (await runs("list", "--token", "s3cret", url=url)).status == 0
    wrong = await runs("tail", run_id, "--token", "wrong", url=url)
    refused = "runcast: the server refused the token:"
    assert (wrong.status, wrong.err) == (1, f"{refused} Invalid token\n")
    missing = await runs("tail", run_id, url=url)
    assert missing.status == 1 and missing.err.startswith("runcast: the server requires a token")
    listed = await runs("list", url=url, token="wrong")
    assert listed.status == 1
    assert listed.err == f"{refused} Authorization: Bearer <token> is required\n"


async def test_bad_options_and_no_server() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    nobody = await runs("list", url=url)
    assert nobody.status == 1 and nobody.err.startswith(f"runcast: cannot reach {url}")
    gave_up = await runs("tail", "r1", "--give-up-after", "0.2", url=url)
    assert gave_up.status == 1
    assert gave_up.err.startswith("runcast: gave up following run r1 after 0.2 s without the")
    bad_url = await runs("list", "--url", "ftp://x")
    assert bad_url.status == 2 and "Invalid value for '--url'" in bad_url.err
    bad_budget = await runs("tail", "r1", "--give-up-after", "soon", url=url)
    assert bad_budget.status == 2 and "'never', got 'soon'" in bad_budget.err
