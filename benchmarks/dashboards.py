"""`--dashboards N`: N browser dashboards watching the servers while a scenario measures them.

One headless chromium (Debian's, driven through Playwright's async API on a thread of its own, so
that the harness's main thread stays free for its workers and progress bar) opens N pages, each
in a browser context of its own (its own sessionStorage), at a server's `/ui/` (the servers in
turn), and leaves each on the runs list, which polls `GET /runs` while the page is visible (a
headless page is). A page counts as open once the server has answered its first `GET /runs`
with 200 (the servers the harness starts have no token; a `--url` server that wants one answers
401, and the command stops). `usage()` reads, at any moment, the CPU seconds of the browser's processes (every
descendant of Playwright's driver process, from /proc), the driver's own, and the requests the
pages have had answered so far, by method and path (Playwright's response events). A process of
the browser's that ends between two readings takes its CPU since the first out of the
difference (none did in our runs: the pages stay open).

Playwright is imported only here, and only when N > 0; `require()` stops the command with one
line (exit 2) when it or chromium is missing.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from benchmarks.server import CLOCK_TICKS

if TYPE_CHECKING:
    from playwright.async_api import Browser, Response

CHROMIUM = "/usr/bin/chromium"  # Debian's, as in the browser tests (`make test` installs it)
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DASHBOARD_PATH = "/ui/"
RUNS_LIST = "GET /runs"  # what the runs list asks for, about once a second
OPEN_TIMEOUT_MS = 60_000  # for a page's first GET /runs, ten pages starting on a busy machine


class DashboardFailed(RuntimeError):
    pass


def require() -> None:
    """Exit 2 with one line unless Playwright can be imported and chromium is there."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        print("runcast-bench: --dashboards needs Playwright, which is not installed "
              "(pip install -e '.[test]')", file=sys.stderr)
        raise SystemExit(2) from None
    if not os.access(CHROMIUM, os.X_OK):
        print(f"runcast-bench: --dashboards needs chromium at {CHROMIUM}, which is missing "
              "(make chromium)", file=sys.stderr)
        raise SystemExit(2)


def processes() -> dict[int, tuple[int, float]]:
    """Every process now: pid -> (parent pid, user + system CPU seconds), from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return found


def descendants(table: dict[int, tuple[int, float]], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        found.add(pid)
        pending.extend(children.get(pid, []))
    return found


@attrs.frozen
class DashboardUsage:
    """What the dashboards had used and asked for up to one moment."""

    chromium_cpu_s: dict[int, float]  # each browser process's CPU seconds so far
    driver_cpu_s: float  # Playwright's driver (node), which relays the pages' events
    answered: Counter[str]  # "GET /runs" -> responses the pages got so far


def dashboard_figures(
    before: DashboardUsage, after: DashboardUsage, seconds: float, events: int
) -> dict[str, Any]:
    """The browser's CPU between two readings (in all, per event, its share of a core), the
    driver's, and the requests the pages had answered in between: GET /runs, and all by path."""
    cpu = sum(spent - before.chromium_cpu_s.get(pid, 0.0)
              for pid, spent in after.chromium_cpu_s.items())
    answered = after.answered - before.answered
    return {
        "chromium_cpu_s": round(cpu, 3),
        "chromium_cpu_us_per_event": round(cpu / events * 1e6, 1),
        "chromium_core_share": round(cpu / seconds, 3),
        "chromium_processes": len(after.chromium_cpu_s),
        "playwright_driver_cpu_s": round(after.driver_cpu_s - before.driver_cpu_s, 3),
        "dashboard_get_runs": answered[RUNS_LIST],
        "dashboard_get_runs_per_s": round(answered[RUNS_LIST] / seconds, 2),
        "dashboard_requests": dict(sorted(answered.items())),
    }


def dashboard_rows(figures: dict[str, Any], dashboards: int) -> list[tuple[str, str]]:
    """Summary-table rows of `dashboard_figures`."""
    return [
        (f"chromium CPU ({dashboards} dashboards)",
         f"{figures['chromium_cpu_s']:.2f} s = {figures['chromium_cpu_us_per_event']:.1f} "
         f"us/event ({figures['chromium_core_share'] * 100:.0f}% of a core, "
         f"{figures['chromium_processes']} processes)"),
        ("  Playwright's driver CPU", f"{figures['playwright_driver_cpu_s']:.2f} s"),
        ("GET /runs answered", f"{figures['dashboard_get_runs']:,} = "
                               f"{figures['dashboard_get_runs_per_s']:.1f}/s"),
    ]


class Dashboards:
    """The pages at `urls`, open from `open()` to `close()` in a chromium on a thread of its own."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = list(urls)
        self._answered: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._driver: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="dashboards", daemon=True)

    def open(self) -> None:
        """Start the browser and open every page; return once each has its first runs list."""
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            self._thread.join()
            raise DashboardFailed(f"the dashboards did not open: {self._failure}")

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        if self._failure is not None:
            raise DashboardFailed(f"the dashboards failed: {self._failure}")

    def usage(self) -> DashboardUsage:
        assert self._driver is not None, "open() first"
        table = processes()
        with self._lock:
            answered = Counter(self._answered)
        return DashboardUsage(
            {pid: table[pid][1] for pid in descendants(table, self._driver)},
            table[self._driver][1],
            answered,
        )

    def _run(self) -> None:
        try:
            asyncio.run(self._session())
        except BaseException as error:  # told to the main thread by open() or close()
            self._failure = error
            self._ready.set()

    async def _session(self) -> None:
        from playwright.async_api import async_playwright

        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        own = os.getpid()
        before = descendants(processes(), own)
        async with async_playwright() as playwright:
            table = processes()
            drivers = [pid for pid in descendants(table, own) - before if table[pid][0] == own]
            if len(drivers) != 1:
                raise DashboardFailed(f"cannot tell Playwright's driver among {drivers}")
            self._driver = drivers[0]
            browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                       args=CHROMIUM_FLAGS)
            try:
                await asyncio.gather(*(self._open_page(browser, url) for url in self.urls))
                self._ready.set()
                await self._stop.wait()
            finally:
                await browser.close()

    async def _open_page(self, browser: Browser, url: str) -> None:
        context = await browser.new_context()
        page = await context.new_page()
        page.on("response", self._count)
        async with page.expect_response(
            lambda response: request_of(response) == RUNS_LIST, timeout=OPEN_TIMEOUT_MS
        ) as first:
            await page.goto(url)
        response = await first.value
        if response.status != 200:
            raise DashboardFailed(f"{url}: its GET /runs was answered {response.status}")

    def _count(self, response: Response) -> None:
        with self._lock:
            self._answered[request_of(response)] += 1


def request_of(response: Response) -> str:
    """"GET /runs": the method and path (no query) of the request `response` answers."""
    return f"{response.request.method} {urlsplit(response.url).path}"


@contextmanager
def watching(base_urls: Sequence[str], count: int) -> Iterator[Dashboards | None]:
    """`count` dashboards on the servers at `base_urls` (in turn), open inside the block; None
    when `count` is 0."""
    if not count:
        yield None
        return
    dashboards = Dashboards([base_urls[i % len(base_urls)] + DASHBOARD_PATH for i in range(count)])
    dashboards.open()
    try:
        yield dashboards
    finally:
        dashboards.close()
