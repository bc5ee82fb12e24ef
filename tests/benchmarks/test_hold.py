"""`hold` at a tiny size against a started runcast: every run is started and still live at the
end, the watchers get every event exactly once, and the record lands in the results file."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import report
from benchmarks.scenarios import hold


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    hold.add_arguments(parser)
    return parser.parse_args(argv)


def test_hold_starts_every_run_and_watches_them_without_gaps(tmp_path) -> None:
    results = tmp_path / "results.jsonl"
    args = parsed("--runs", "20", "--watched", "5", "--interval", "0.2", "--duration", "2",
                  "--processes", "2", "--results", str(results))
    entries = hold.command(args)
    [entry] = entries
    figures = entry["figures"]
    assert entry["scenario"] == "hold"
    assert figures["runs_started"] == 20
    assert figures["live_runs"] == 20
    assert (figures["gaps"], figures["duplicates"], figures["watched_ended_early"]) == (0, 0, 0)
    assert figures["events"] >= 5  # each watched run's WorkflowStarted at least
    assert figures["event_delay"]["count"] > 0
    # watched events also have the kernel's receive time (all but those before Linux turned
    # timestamps on), each no later than the client's read
    socket_delay = figures["socket_event_delay"]
    assert 0 < socket_delay["count"] <= figures["event_delay"]["count"]
    assert socket_delay["max_ms"] <= figures["event_delay"]["max_ms"]
    assert figures["server_metrics_delta"]["runcast_runs_started_total"] == 20
    assert hold.problems(figures, 20) == []
    assert entry["parameters"]["events_per_interval"] == 1.15
    assert report.read(results) == entries


def test_bad_arguments_are_refused_by_name_before_anything_starts(tmp_path) -> None:
    args = parsed("--runs", "20", "--watched", "30", "--interval", "0",
                  "--results", str(tmp_path / "results.jsonl"))
    with pytest.raises(SystemExit) as refused:
        hold.command(args)
    assert str(refused.value) == (
        "hold: --watched must be between 0 and --runs (20), got 30; "
        "--interval must be a positive number of seconds, got 0.0"
    )
    assert not (tmp_path / "results.jsonl").exists()


def test_problems_name_what_went_wrong() -> None:
    figures = {"runs_started": 18, "gaps": 2, "duplicates": 1, "watched_ended_early": 3}
    assert hold.problems(figures, 20) == [
        "18 of 20 runs started",
        "2 gaps and 1 duplicates",
        "3 watched runs ended during the hold",
    ]


@settings(deadline=None, max_examples=200)
@given(
    runs=st.integers(1, 20_000),
    interval=st.floats(0.01, 10),
    duration=st.floats(0, 600),
    ticks=st.integers(1, 50),
)
def test_demo_ticks_every_interval_and_outlasts_the_scenario(
    runs: int, interval: float, duration: float, ticks: int
) -> None:
    demo = hold.demo_size(runs, interval, duration, ticks)
    assert demo.progress == ticks
    assert demo.step_delay / demo.progress == pytest.approx(interval)
    needed = 2 * (runs / hold.ASSUMED_STARTS_PER_S + duration)
    lifetime = demo.steps * demo.step_delay
    assert lifetime >= needed * (1 - 1e-9)
    assert demo.steps == 1 or lifetime - demo.step_delay < needed * (1 + 1e-9)  # the fewest steps
    assert hold.demo_size(runs, interval, duration, ticks, steps=7).steps == 7
