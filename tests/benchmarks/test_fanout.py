"""`fanout` at a tiny size against a started runcast: every subscriber gets every event of the
run once, from index 0, and the record lands in the results file."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import report
from benchmarks.scenarios import fanout


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    fanout.add_arguments(parser)
    return parser.parse_args(argv)


def test_every_subscriber_gets_every_event_once(tmp_path) -> None:
    results = tmp_path / "results.jsonl"
    args = parsed("--subscribers", "10", "--events", "100", "--run-seconds", "2",
                  "--processes", "2", "--results", str(results))
    entries = fanout.command(args)
    [entry] = entries
    figures = entry["figures"]
    assert entry["scenario"] == "fanout"
    assert entry["parameters"]["steps"] == 25
    assert figures["events_in_run"] == 102  # 2 + 25 steps * (3 + 1 tick)
    assert figures["subscribers"] == 10
    assert figures["deliveries"] == 10 * 102
    assert (figures["gaps"], figures["duplicates"], figures["incomplete_subscribers"]) == (0, 0, 0)
    assert figures["event_delay"]["count"] == 10 * 25  # one StepProgress per step
    delta = figures["server_metrics_delta"]
    assert delta["runcast_events_appended_total"] == 102
    assert delta["runcast_subscriptions_total"] == 1 + 10  # the starting socket, the subscribers
    assert fanout.problems(figures, 10) == []
    assert report.read(results) == entries


def test_bad_arguments_are_refused_by_name_before_anything_starts(tmp_path) -> None:
    args = parsed("--subscribers", "0", "--run-seconds", "-1",
                  "--results", str(tmp_path / "results.jsonl"))
    with pytest.raises(SystemExit) as refused:
        fanout.command(args)
    assert str(refused.value) == (
        "fanout: --subscribers must be at least 1, got 0; "
        "--run-seconds must be a positive number, got -1.0"
    )
    assert not (tmp_path / "results.jsonl").exists()


def test_problems_name_what_went_wrong() -> None:
    figures = {"subscribers": 9, "gaps": 1, "duplicates": 0, "incomplete_subscribers": 2}
    assert fanout.problems(figures, 10) == [
        "9 of 10 subscribers finished",
        "1 gaps and 0 duplicates",
        "2 subscribers missed events",
    ]


@settings(deadline=None, max_examples=200)
@given(events=st.integers(1, 100_000), progress=st.integers(0, 20),
       run_seconds=st.floats(0.1, 600))
def test_demo_run_has_about_the_asked_events_over_the_asked_time(
    events: int, progress: int, run_seconds: float
) -> None:
    demo = fanout.demo_size(events, progress, run_seconds)
    assert demo.progress == progress
    assert demo.steps * demo.step_delay == pytest.approx(run_seconds)
    per_step = 3 + progress
    assert demo.events_per_run >= events
    assert demo.steps == 1 or demo.events_per_run - per_step < events
    assert fanout.demo_size(events, progress, run_seconds, steps=3).steps == 3
