"""`runcast runs`: runs from the command line, through `RuncastClient` (the server's public
protocols only): `list`, `show RUN`, `tail RUN`, `start WORKFLOW`, `cancel RUN`.

Every command takes `--url` (env `RUNCAST_URL`, default http://127.0.0.1:7777), `--token` (env
`RUNCAST_TOKEN`) and `--json`; it prints a table or one line per event for people, and with
`--json` one JSON object per line for scripts (for events, each frame as the server sent it). A
command that fails exits 1 with one line, `runcast: <what was wrong>`, on stderr; `tail` exits 0
once the run's terminal event is printed.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import aclosing, contextmanager
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import click

from client.backoff import Backoff
from client.client import DEFAULT_URL, RuncastClient
from client.errors import RuncastError
from client.events import RunEvent, RunInfo

F = TypeVar("F", bound=Callable[..., Any])

PAGE_LIMIT = 1000  # runs in one GET /runs answer, the server's most
DETAIL_CHARACTERS = 120  # of an event's content in `tail`'s human output
RUN_COLUMNS = ("run_id", "workflow_id", "status", "event_count", "created_at", "finished_at")
HEADINGS = ("RUN", "WORKFLOW", "STATUS", "EVENTS", "CREATED", "FINISHED")


def _url(context: click.Context, parameter: click.Parameter, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"must be http://HOST:PORT or https://..., got {value!r}")
    return value


def _seconds(context: click.Context, parameter: click.Parameter, value: str) -> float | None:
    """A number of seconds, 0 or more, or `never` (None)."""
    if value.lower() == "never":
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise click.BadParameter(
            f"must be a number of seconds (0 or more) or 'never', got {value!r}"
        )
    return seconds


def server_options(command: F) -> F:
    """--url, --token and --json, which every command takes."""
    command = click.option(
        "--json", "as_json", is_flag=True, help="One JSON object per line, for scripts."
    )(command)
    command = click.option(
        "--token", envvar="RUNCAST_TOKEN", default=None,
        help="The server's token (env RUNCAST_TOKEN).",
    )(command)
    return click.option(
        "--url", envvar="RUNCAST_URL", default=DEFAULT_URL, show_default=True, callback=_url,
        help="The server (env RUNCAST_URL).",
    )(command)


def run_client(
    url: str,
    token: str | None,
    work: Callable[[RuncastClient], Awaitable[None]],
    backoff: Backoff | None = None,
) -> None:
    """Run `work` with a client on trio; a refusal or a lost server ends the command with one
    line and status 1."""

    async def main() -> None:
        async with RuncastClient(url, token, backoff=backoff) as client:
            await work(client)

    try:
        with quiet_pipe():
            anyio.run(main, backend="trio")
    except RuncastError as error:
        click.echo(f"runcast: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


@contextmanager
def quiet_pipe() -> Iterator[None]:
    """A reader that closed the pipe (`runcast runs tail RUN | head`) ends the command quietly."""
    try:
        yield
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, separators=(",", ":")))


def when(timestamp: Any) -> str:
    if not isinstance(timestamp, int | float):
        return "-"
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    ]


def run_row(run: RunInfo) -> list[str]:
    return [
        run.run_id, run.workflow_id, run.status, str(run.event_count),
        when(run.created_at), when(run.finished_at),
    ]


def event_line(event: RunEvent) -> str:
    """`index  name  step: content`, the content on one line and cut to DETAIL_CHARACTERS."""
    data = event.data
    parts = [str(data[key]) for key in ("step_name",) if data.get(key)]
    detail = data.get("error") or data.get("content")
    if detail is not None:
        text = detail if isinstance(detail, str) else json.dumps(detail)
        text = " ".join(text.split())
        if len(text) > DETAIL_CHARACTERS:
            text = text[: DETAIL_CHARACTERS - 1] + "…"
        parts.append(text)
    return f"{event.index:>5}  {event.name:<20} {': '.join(parts)}".rstrip()


async def print_events(client: RuncastClient, run_id: str, start: int, as_json: bool) -> None:
    async with client.watch(run_id, start) as events:
        async for event in events:
            click.echo(event.raw if as_json else event_line(event))


@click.group(name="runs")
def runs() -> None:
    """Runs of a runcast server: list, show, tail, start, cancel."""


@runs.command(name="list")
@click.option(
    "--limit", type=click.IntRange(min=1), default=100, show_default=True,
    help="At most this many runs (fetched a page of up to 1000 at a time).",
)
@click.option(
    "--status", default=None, help="Only runs of this status: RUNNING, COMPLETED, ERROR, CANCELLED."
)
@click.option("--workflow", "workflow_id", default=None, help="Only runs of this workflow id.")
@click.option("--search", "run_id_prefix", default=None,
              help="Only runs whose run id starts with this.")
@server_options
def list_runs(
    url: str, token: str | None, as_json: bool, limit: int, status: str | None,
    workflow_id: str | None, run_id_prefix: str | None,
) -> None:
    """The newest runs, newest first."""

    async def work(client: RuncastClient) -> None:
        listed: list[RunInfo] = []
        selected = client.all_runs(
            status, workflow_id=workflow_id, run_id_prefix=run_id_prefix,
            page_size=min(limit, PAGE_LIMIT),
        )
        async with aclosing(selected):
            async for run in selected:
                listed.append(run)
                if len(listed) == limit:
                    break
        if as_json:
            for run in listed:
                print_json(run.data)
        elif listed:
            for line in table([list(HEADINGS), *(run_row(run) for run in listed)]):
                click.echo(line)
        else:
            click.echo("no runs")

    run_client(url, token, work)


@runs.command()
@click.argument("run_id", metavar="RUN")
@server_options
def show(url: str, token: str | None, as_json: bool, run_id: str) -> None:
    """One run: its workflow, status, events, times."""

    async def work(client: RuncastClient) -> None:
        run = await client.get_run(run_id)
        if as_json:
            print_json(run.data)
            return
        for key, value in run.data.items():
            shown = when(value) if key.endswith("_at") else ("-" if value is None else value)
            click.echo(f"{key + ':':<15} {shown}")

    run_client(url, token, work)


@runs.command()
@click.argument("run_id", metavar="RUN")
@click.option("--from", "start", type=click.IntRange(min=0), default=0, show_default=True,
              help="The first event index to print.")
@click.option("--give-up-after", metavar="SECONDS|never", default="300", show_default=True,
              callback=_seconds,
              help="Seconds without the server before giving up, or 'never'.")
@server_options
def tail(
    url: str, token: str | None, as_json: bool, run_id: str, start: int,
    give_up_after: float | None,
) -> None:
    """Print a run's events from --from on, live while it runs, until its terminal event;
    reconnects by itself when the connection drops."""
    backoff = Backoff(give_up_after=give_up_after)
    work = partial(print_events, run_id=run_id, start=start, as_json=as_json)
    run_client(url, token, work, backoff)


@runs.command()
@click.argument("workflow_id", metavar="WORKFLOW")
@click.option("--message", default="", help="The run's input.")
@click.option("--session-id", default=None, help="The run's session (a new one if absent).")
@click.option("--user-id", default=None)
@click.option("--follow", is_flag=True, help="Then print its events as `tail` does.")
@server_options
def start(
    url: str, token: str | None, as_json: bool, workflow_id: str, message: str,
    session_id: str | None, user_id: str | None, follow: bool,
) -> None:
    """Start a run of WORKFLOW and print its run id."""

    async def work(client: RuncastClient) -> None:
        run = await client.start(workflow_id, message, session_id, user_id)
        if as_json:
            ids = {"run_id": run.run_id, "workflow_id": workflow_id, "session_id": run.session_id}
            print_json(ids)
        else:
            click.echo(run.run_id)
        if follow:
            await print_events(client, run.run_id, 0, as_json)

    run_client(url, token, work)


@runs.command()
@click.argument("run_id", metavar="RUN")
@click.option(
    "--reason", default=None, help="Carried by the run's WorkflowCancelled and WorkflowCompleted."
)
@server_options
def cancel(url: str, token: str | None, as_json: bool, run_id: str, reason: str | None) -> None:
    """Ask a running run to stop."""

    async def work(client: RuncastClient) -> None:
        await client.cancel(run_id, reason)
        if as_json:
            print_json({"run_id": run_id, "status": "cancelling"})
        else:
            click.echo(f"cancelling run {run_id}")

    run_client(url, token, work)

