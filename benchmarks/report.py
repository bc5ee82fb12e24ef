"""What a scenario reports: latency percentiles, the summary table, the JSON record, the plot.

Percentiles are exact (a sort of every sample). Each scenario run appends one JSON object per
line to the results file, with the machine, the command's parameters and every figure; `plot`
reads such records back and draws events/s and latency percentiles against concurrency.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

DEFAULT_RESULTS = Path("benchmarks/results/results.jsonl")


@attrs.frozen
class Percentiles:
    count: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples: Iterable[float]) -> Percentiles | None:
        ordered = sorted(samples)
        if not ordered:
            return None

        def at(fraction: float) -> float:
            return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

        return cls(len(ordered), at(0.50), at(0.90), at(0.99), ordered[-1])

    def in_ms(self) -> dict[str, float]:
        return {
            "count": self.count,
            "p50_ms": round(self.p50 * 1000, 3),
            "p90_ms": round(self.p90 * 1000, 3),
            "p99_ms": round(self.p99 * 1000, 3),
            "max_ms": round(self.max * 1000, 3),
        }


def latency_text(in_ms: dict[str, float]) -> str:
    """`Percentiles.in_ms()` as a summary-table cell: "p50 1.2 ms, p90 ..., p99 ..., max ..."."""
    return ", ".join(f"{name} {in_ms[name + '_ms']:.1f} ms" for name in ("p50", "p90", "p99", "max"))


def usage_rows(
    figures: dict[str, Any], unit: str | None = None, during: str = ""
) -> list[tuple[str, str]]:
    """Summary-table rows of `benchmarks.server.usage_figures`: the servers' CPU (with each
    server's when there are several) and Redis's, per `unit` when given, and Redis's memory."""
    rows = []
    for side, name in (("server", "server CPU"), ("redis", "Redis CPU")):
        if f"{side}_cpu_s" in figures:
            text = f"{figures[f'{side}_cpu_s']:.2f} s"
            if unit:
                text += f" = {figures[f'{side}_cpu_us_per_{unit}']:.1f} us/{unit}"
            text += f" ({figures[f'{side}_core_share'] * 100:.0f}% of a core)"
            rows.append((name + during, text))
        if side == "server" and "server_cpu_s_each" in figures:
            each = ", ".join(f"{seconds:.2f} s" for seconds in figures["server_cpu_s_each"])
            rows.append(("  each server", each))
    if "redis_used_memory_mib" in figures:
        rows.append(("Redis used_memory", f"{figures['redis_used_memory_mib']:,.1f} MiB at the end "
                                          f"({figures['redis_used_memory_growth_mib']:+,.1f} MiB)"))
    return rows


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def record(scenario: str, parameters: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(sys.argv),
        "machine": machine(),
        "parameters": parameters,
        "figures": figures,
    }


def append(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as results:
        results.write(json.dumps(entry) + "\n")


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table(rows: Sequence[tuple[str, str]]) -> str:
    """Two aligned columns: figure, value."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name.ljust(width)}  {value}" for name, value in rows)


def plot(entries: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Events/s and latency percentiles against concurrency, one point per entry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted(entries, key=lambda e: e["parameters"]["concurrency"])
    concurrency = [e["parameters"]["concurrency"] for e in points]
    figure, (rate_axis, latency_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    rate_axis.plot(concurrency, [e["figures"]["events_per_s"] for e in points], marker="o")
    rate_axis.set_xlabel("concurrent runs")
    rate_axis.set_ylabel("events/s delivered")
    rate_axis.set_ylim(bottom=0)
    rate_axis.grid(alpha=0.3)
    for key in ("p50_ms", "p90_ms", "p99_ms"):
        values = [(e["figures"].get("event_delay") or {}).get(key) for e in points]
        if any(v is not None for v in values):
            latency_axis.plot(concurrency, values, marker="o", label=key.removesuffix("_ms"))
    latency_axis.set_xlabel("concurrent runs")
    latency_axis.set_ylabel("event delay (ms)")
    latency_axis.set_ylim(bottom=0)
    latency_axis.grid(alpha=0.3)
    latency_axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
