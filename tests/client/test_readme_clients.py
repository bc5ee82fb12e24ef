"""The README's two client examples (Clients) run as written against a real server: the trio
one starts a run and prints all of its events, the asyncio one follows a run from event 10."""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from client import RuncastClient
from tests.conftest import RunningServer
from tests.test_readme import python_example


async def run_example(marker: str, what: str, tmp_path: Path, *args: str) -> list[str]:
    script = tmp_path / "example.py"
    script.write_text(python_example(marker, what))
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, str(script), *args],
            cwd=tmp_path, capture_stdout=True, capture_stderr=True, check=False,
        )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode().splitlines()


async def test_the_trio_example_prints_a_run_whole(server: RunningServer, tmp_path: Path) -> None:
    lines = await run_example(
        "from client import RuncastClient\n", "the client on trio", tmp_path, server.base_url
    )
    assert [int(line.split()[0]) for line in lines] == list(range(42))
    assert lines[0] == "0 WorkflowStarted " and lines[1] == "1 StepStarted research"
    assert lines[-1].startswith("41 WorkflowCompleted")


async def test_the_asyncio_example_follows_a_run_from_event_10(
    server: RunningServer, tmp_path: Path
) -> None:
    async with RuncastClient(server.base_url) as client:
        run = await client.start("content-creation-workflow")
    lines = await run_example(
        "from client import Backoff", "the client on asyncio", tmp_path, server.base_url,
        run.run_id,
    )
    assert [int(line.split()[0]) for line in lines[:-1]] == list(range(10, 42))
    assert lines[-1] == "COMPLETED 42 events"
    unknown = tmp_path / "example.py"
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, str(unknown), server.base_url, "nope"],
            capture_stdout=True, capture_stderr=True, check=False,
        )
    assert (done.returncode, done.stderr) == (1, b"runcast: Run nope not found\n")
