"""How long each step of the server's shutdown may take, and so the whole of it.

On SIGTERM the server gives running runs `shutdown_grace` seconds, then cancels the rest and gives
them `CANCELLED_RUNS_DEADLINE` (`actors.runtime`) to record their end; then every WebSocket gets
`PUMP_FLUSH_TIMEOUT` to send its runs' last events, and `CLOSE_TIMEOUT` for the closing handshake
(which bounds every close the server begins, not only those of a shutdown). `graceful_timeout` is
their sum: how long Hypercorn waits for connections once it stops accepting.
"""

from __future__ import annotations

from actors.runtime import CANCELLED_RUNS_DEADLINE

PUMP_FLUSH_TIMEOUT = 5.0  # how long a socket may take to send its runs' last events
CLOSE_TIMEOUT = 5.0  # how long the server waits for the client's Close after sending its own


def graceful_timeout(shutdown_grace: float) -> float:
    """The longest a shutdown with `shutdown_grace` may keep connections open."""
    return shutdown_grace + CANCELLED_RUNS_DEADLINE + PUMP_FLUSH_TIMEOUT + CLOSE_TIMEOUT
