"""A progress bar on stderr for long benchmark work: done / total, rate, elapsed.

On a terminal it redraws one line; otherwise (CI, a pipe) it prints a line at most every ten
seconds, so logs stay short.
"""

from __future__ import annotations

import sys
import time

WIDTH = 30
QUIET_INTERVAL = 10.0


class ProgressBar:
    def __init__(self, label: str, total: int, unit: str) -> None:
        self.label = label
        self.total = max(total, 1)
        self.unit = unit
        self.started = time.perf_counter()
        self._last_line = 0.0
        self._tty = sys.stderr.isatty()

    def line(self, done: int) -> str:
        elapsed = time.perf_counter() - self.started
        filled = min(WIDTH, WIDTH * done // self.total)
        rate = done / elapsed if elapsed > 0 else 0.0
        return (
            f"{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] {done:,}/{self.total:,} "
            f"{self.unit} {rate:,.0f}/s {elapsed:.1f}s"
        )

    def show(self, done: int) -> None:
        now = time.perf_counter()
        if self._tty:
            sys.stderr.write("\r" + self.line(done))
            sys.stderr.flush()
        elif now - self._last_line >= QUIET_INTERVAL:
            self._last_line = now
            sys.stderr.write(self.line(done) + "\n")

    def finish(self, done: int) -> None:
        sys.stderr.write(("\r" if self._tty else "") + self.line(done) + "\n")
        sys.stderr.flush()
