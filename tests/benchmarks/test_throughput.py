"""`runcast-bench throughput` and `inprocess` at a tiny size, through the command line, so the
harness cannot rot: every run checked gap-free, the JSON records appended, the plot written.
No timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.cli import main


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_throughput_sweep_records_every_concurrency_and_plots(tmp_path: Path) -> None:
    results, plot = tmp_path / "results.jsonl", tmp_path / "throughput.png"
    main(["throughput", "--runs", "6", "--concurrency", "1,3", "--warmup", "2",
          "--steps", "2", "--progress", "1", "--processes", "1",
          "--results", str(results), "--plot", str(plot)])
    entries = records(results)
    assert [e["parameters"]["concurrency"] for e in entries] == [1, 3]
    for entry in entries:
        figures = entry["figures"]
        assert entry["scenario"] == "throughput"
        assert figures["runs"] == 6 and figures["events"] == 6 * (2 + 2 * 4)
        assert figures["gaps"] == figures["duplicates"] == figures["not_completed"] == 0
        assert figures["server_cpu_s"] >= 0 and figures["event_delay"]["count"] == 6 * 2
        assert figures["server_metrics_delta"]["runcast_events_appended_total"] == 60
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inprocess_runs_both_stores(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    main(["inprocess", "--runs", "5", "--events", "20", "--concurrency", "2",
          "--results", str(results)])
    entries = records(results)
    assert [e["parameters"]["store"] for e in entries] == ["memory", "sqlite"]
    for entry in entries:
        assert entry["figures"]["events"] == 5 * 22
        assert entry["figures"]["events_per_s"] > 0
