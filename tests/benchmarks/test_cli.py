"""The harness's command, `runcast-bench` (benchmarks/cli.py), is a console script of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUNCAST_BENCH = Path(sys.executable).parent / "runcast-bench"
SCENARIOS = (
    "throughput", "reconnect-storm", "hold", "fanout", "ceiling", "inprocess", "node-loss"
)


def test_runcast_bench_lists_every_scenario() -> None:
    result = subprocess.run(
        [str(RUNCAST_BENCH), "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: runcast-bench")
    for scenario in SCENARIOS:
        assert scenario in result.stdout
