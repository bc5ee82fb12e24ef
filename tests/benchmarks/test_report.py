"""Percentiles, records and the summary table of benchmarks/report.py."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from benchmarks import report


def test_percentiles_are_exact_ranks_of_the_sorted_samples() -> None:
    p = report.Percentiles.of(float(v) for v in range(1, 101))
    assert p is not None
    assert (p.count, p.p50, p.p90, p.p99, p.max) == (100, 51.0, 91.0, 100.0, 100.0)
    assert report.Percentiles.of([]) is None


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1))
def test_percentiles_are_ordered_samples(samples: list[float]) -> None:
    p = report.Percentiles.of(samples)
    assert p is not None
    assert min(samples) <= p.p50 <= p.p90 <= p.p99 <= p.max == max(samples)
    assert {p.p50, p.p90, p.p99} <= set(samples)


def test_records_are_appended_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "results.jsonl"
    first = report.record("x", {"a": 1}, {"b": 2.5})
    report.append(path, first)
    report.append(path, report.record("y", {}, {}))
    read = report.read(path)
    assert [r["scenario"] for r in read] == ["x", "y"]
    assert read[0]["parameters"] == {"a": 1} and read[0]["figures"] == {"b": 2.5}
    assert read[0]["machine"]["cores"] >= 1


def test_the_table_aligns_its_values() -> None:
    assert report.table([("a", "1"), ("long name", "2")]).splitlines() == [
        "  a          1",
        "  long name  2",
    ]


def test_latency_text_gives_the_percentiles_in_milliseconds() -> None:
    latency = report.Percentiles.of([0.001, 0.002, 0.0105, 0.25])
    assert latency is not None
    assert report.latency_text(latency.in_ms()) == "p50 10.5 ms, p90 250.0 ms, p99 250.0 ms, max 250.0 ms"
