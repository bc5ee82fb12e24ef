"""web/shutdown.py: Hypercorn waits for connections as long as every step of a shutdown may take."""

from __future__ import annotations

from actors.runtime import CANCELLED_RUNS_DEADLINE
from web.server import Settings, hypercorn_config
from web.shutdown import CLOSE_TIMEOUT, PUMP_FLUSH_TIMEOUT, graceful_timeout


def test_the_graceful_timeout_is_the_sum_of_the_steps() -> None:
    steps = CANCELLED_RUNS_DEADLINE + PUMP_FLUSH_TIMEOUT + CLOSE_TIMEOUT
    assert graceful_timeout(0) == steps
    assert graceful_timeout(7.5) == 7.5 + steps


def test_the_server_gives_hypercorn_the_graceful_timeout_of_its_shutdown_grace() -> None:
    assert hypercorn_config(Settings(shutdown_grace=7.5)).graceful_timeout == graceful_timeout(7.5)
