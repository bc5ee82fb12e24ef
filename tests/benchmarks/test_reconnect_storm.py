"""The reconnect storm: every reconnect is done and counted, and every event of every run reaches
its client exactly once across its connections, whether the reconnect gets a catch-up or, once the
run has finished, a replay."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.scenarios.reconnect_storm import (
    Follower,
    add_arguments,
    command,
    demo_size,
    live_max,
    measure,
    plans_for,
)
from benchmarks.server import DemoSize, started_runcast


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def assert_exactly_once(figures: dict[str, Any]) -> None:
    assert (figures["gaps"], figures["duplicates"], figures["missing"]) == (0, 0, 0)
    assert figures["not_completed"] == 0
    assert figures["events"] == figures["run_events"] + figures["redelivered"]


def test_command_does_every_reconnect_and_records_it(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    args = parse("--clients", "4", "--reconnects", "12", "--missed", "40", "--rate", "400",
                 "--seed", "7", "--processes", "2", "--results", str(results))
    [entry] = command(args)
    figures = entry["figures"]
    assert figures["clients"] == 4
    assert figures["reconnects"] == 12
    assert figures["catch_ups"] + figures["replays"] + figures["nothing_missed"] == 12
    assert_exactly_once(figures)
    if figures["catch_ups"]:
        assert figures["catch_up_latency"]["count"] == figures["catch_ups"]
        assert 1 <= figures["missed_events"]["min"] <= figures["missed_events"]["max"]
    [recorded] = [json.loads(line) for line in results.read_text().splitlines()]
    assert recorded["scenario"] == "reconnect-storm"
    assert recorded["parameters"]["seed"] == 7
    assert recorded["figures"] == figures


def test_reconnects_to_finished_runs_get_replays_without_duplicates() -> None:
    plans = plans_for(clients=3, reconnects=6, missed=40, rate=200.0, seed=3)
    with started_runcast(DemoSize(steps=1, progress=17, step_delay=0.0)) as server:
        figures = measure(server, "content-creation-workflow", plans, processes=1)
    assert figures["reconnects"] == 6
    assert figures["replays"] == 6  # a 22-event run with no delay is over before the first one
    assert figures["redelivered"] > 0
    assert_exactly_once(figures)


def events(follower: Follower, indices: list[int], replay: bool, last: int | None = None) -> None:
    cursor = follower.open_cursor(replay)
    for index in indices:
        name = "WorkflowCompleted" if index == last else "StepProgress"
        follower.accept({"event": name, "event_index": index}, cursor)


def test_a_duplicate_a_gap_and_a_missing_index_are_each_counted() -> None:
    follower = Follower(missed=2, rate=1.0)
    events(follower, [0, 1, 2], replay=False)
    events(follower, [2, 4, 5], replay=False, last=5)  # 2 again, 3 skipped
    result = follower.result()
    assert (result["duplicates"], result["gaps"], result["missing"]) == (1, 1, 1)
    assert result["completed"]


def test_a_replay_redelivers_without_duplicates() -> None:
    follower = Follower(missed=2, rate=1.0)
    events(follower, [0, 1, 2], replay=False)
    events(follower, [0, 1, 2, 3, 4], replay=True, last=4)
    result = follower.result()
    assert (result["duplicates"], result["gaps"], result["missing"]) == (0, 0, 0)
    assert (result["events"], result["redelivered"], result["run_events"]) == (8, 3, 5)
    events(follower, [0, 2], replay=True)  # a second replay skipping index 1
    assert follower.result()["gaps"] == 1


def test_a_started_servers_runs_outlast_a_clients_share() -> None:
    demo = demo_size(reconnects_per_client=10, missed=1000, rate=40.0)
    assert demo.events_per_run >= live_max(1000) + 10 * (1000 + live_max(1000))
    assert (3 + demo.progress) / demo.step_delay == pytest.approx(40.0)  # events/s of a run
