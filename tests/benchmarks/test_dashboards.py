"""`runcast-bench throughput --dashboards N`: a tiny run with a real dashboard open in Debian's
chromium records the browser's CPU and the GET /runs its page had answered; without Playwright
or chromium the command stops before it starts anything, with one line and status 2. No timing
is asserted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmarks import dashboards
from benchmarks.cli import main

TINY = ["throughput", "--runs", "20", "--concurrency", "2", "--warmup", "2",
        "--steps", "20", "--progress", "1", "--processes", "1"]


def test_throughput_with_a_dashboard_records_its_cpu_and_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results.jsonl"
    main([*TINY, "--dashboards", "1", "--results", str(results)])
    [entry] = [json.loads(line) for line in results.read_text().splitlines()]
    figures = entry["figures"]
    assert entry["parameters"]["dashboards"] == 1
    assert figures["gaps"] == figures["duplicates"] == figures["not_completed"] == 0
    assert figures["chromium_processes"] >= 2  # the browser and the page's renderer at least
    assert figures["chromium_cpu_s"] >= 0 and figures["chromium_cpu_us_per_event"] >= 0
    assert figures["chromium_core_share"] >= 0 and figures["playwright_driver_cpu_s"] >= 0
    assert figures["dashboard_get_runs"] == figures["dashboard_requests"].get("GET /runs", 0)
    assert figures["dashboard_get_runs_per_s"] >= 0
    out = capsys.readouterr().out
    assert "1 dashboards open on the runs list" in out
    assert "chromium CPU (1 dashboards)" in out and "GET /runs answered" in out


def test_without_dashboards_the_record_has_no_browser_figures(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    main([*TINY, "--results", str(results)])
    [entry] = [json.loads(line) for line in results.read_text().splitlines()]
    assert entry["parameters"]["dashboards"] == 0
    assert not [key for key in entry["figures"] if "chromium" in key or "dashboard" in key]


def test_without_playwright_one_line_and_status_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "playwright.async_api", None)  # import raises ImportError
    with pytest.raises(SystemExit) as stopped:
        main([*TINY, "--dashboards", "2", "--results", str(tmp_path / "results.jsonl")])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--dashboards needs Playwright" in err
    assert not (tmp_path / "results.jsonl").exists()


def test_without_chromium_one_line_and_status_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(dashboards, "CHROMIUM", str(tmp_path / "no-chromium"))
    with pytest.raises(SystemExit) as stopped:
        main([*TINY, "--dashboards", "1", "--results", str(tmp_path / "results.jsonl")])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"chromium at {tmp_path / 'no-chromium'}" in err


def test_a_negative_count_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main([*TINY, "--dashboards", "-1"])
    assert stopped.value.code == 2
    assert "--dashboards" in capsys.readouterr().err
