"""`node-loss` at a tiny size on a real redis-server (tests/conftest.py `redis_url`): the killed
node's runs end at their followers on the other node, each run's events exactly once with the
terminal one last, the record has a row per kill; and what `run_faults` counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.cli import main
from benchmarks.scenarios.node_loss import FAULTS, Followed, bound_s, run_faults
from benchmarks.wsclient import Cursor


def test_node_loss_ends_every_run_of_the_killed_node_at_its_follower(
    redis_url: str, tmp_path: Path
) -> None:
    results = tmp_path / "results.jsonl"
    main(["node-loss", "--store", redis_url, "--kills", "1", "--runs", "2",
          "--logs", str(tmp_path / "logs"), "--results", str(results)])
    [entry] = [json.loads(line) for line in results.read_text().splitlines()]
    assert entry["scenario"] == "node-loss"
    parameters, figures = entry["parameters"], entry["figures"]
    assert (parameters["lease_ttl"], parameters["lease_renew"]) == (2.0, 0.5)
    assert parameters["restart"] == "end"
    assert figures["bound_s"] == 3.0
    assert (figures["kills"], figures["runs"]) == (1, 2)
    assert all(figures[kind] == 0 for kind in FAULTS), figures
    assert figures["node_log_tracebacks"] == 0
    assert figures["detection"]["count"] == 2  # no timing asserted
    [row] = figures["kill_rows"]
    assert (row["victim"], row["survivor"]) == ("node-1", "node-2")
    assert len(row["detection_s"]) == 2 and row["restart_to_health_s"] > 0
    assert row["closed_by"] == ["node-2", "node-2"]  # the victim is restarted after the ends
    assert figures["events_followed"] >= 2  # the terminal events at least
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["node-1.log", "node-2.log"]


def test_a_lease_renewal_not_shorter_than_the_lease_is_refused(redis_url: str) -> None:
    with pytest.raises(SystemExit, match="--lease-renew \\(2\\) must be shorter"):
        main(["node-loss", "--store", redis_url, "--lease-ttl", "2", "--lease-renew", "2"])


def test_the_bound_is_the_lease_and_two_sweeps() -> None:
    assert bound_s(10.0, 3.0) == 16.0


def frame(index: int, event: str = "StepProgress", **fields: Any) -> str:
    return json.dumps({"event": event, "run_id": "r", "event_index": index, **fields})


END = frame(5, "WorkflowError", reason="interrupted")
REPLAY = {"event": "replay", "status": "ERROR", "total_events": 6}


def followed(follower: list[str], starter: list[str] | None = None) -> Followed:
    run = Followed("r", starter if starter is not None else [frame(0), frame(1), frame(2)])
    run.cursor = Cursor(next_index=run.last_index + 1)
    for text in follower:
        run.take(text, json.loads(text))
    return run


def faults(run: Followed, history: list[str], opening: dict[str, Any] = REPLAY) -> dict[str, int]:
    found = run_faults(run, opening, history)
    return {kind: count for kind, count in found.items() if count}


def test_a_run_handed_over_whole_has_no_fault() -> None:
    run = followed([frame(3), frame(4), END])
    assert faults(run, run.starter + run.follower) == {}


def test_a_gap_a_duplicate_an_event_after_the_end_and_a_wrong_end_are_counted() -> None:
    assert faults(followed([frame(4), END]), [frame(i) for i in range(5)] + [END]) == {
        "gaps": 1, "replay_mismatch": 1}
    run = followed([frame(2), frame(3), frame(4), END, frame(6)])
    assert faults(run, [frame(i) for i in range(5)] + [END]) == {
        "duplicates": 1, "after_terminal": 1, "replay_mismatch": 1}
    completed = followed([frame(3), frame(4), frame(5, "WorkflowCompleted")])
    assert faults(completed, completed.starter + completed.follower) == {"wrong_end": 1}
    assert faults(followed([frame(3)]), []) == {"not_ended": 1}


def test_a_replay_that_differs_from_what_the_clients_got_is_a_mismatch() -> None:
    run = followed([frame(3), frame(4), END])
    history = run.starter + run.follower
    assert faults(run, history[:-1]) == {"replay_mismatch": 1}
    assert faults(run, history, {**REPLAY, "status": "COMPLETED"}) == {"replay_mismatch": 1}
    assert faults(run, [], {"event": "subscribed"}) == {"replay_mismatch": 1}
