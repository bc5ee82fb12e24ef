"""What the client raises: one hierarchy under `RuncastError`.

- `Refused`: the server answered and refused the request; the message is the server's own.
  Its kinds a program may want to tell apart: `RunNotFound`, `WorkflowNotFound`, `HistoryGone`
  (the run finished longer ago than a Redis store's `--retention`; its record may still be
  listed), `AuthenticationFailed` (no token, or a wrong one, for a server that wants one).
- `ServerError`: the server failed to serve the request (an HTTP 5xx, an `internal error` frame,
  an answer outside the protocol).
- `ConnectionLost`: the server could not be reached, or the connection broke, and the request
  cannot go on: at once for one-shot requests, and for a watch once its `Backoff` gives up.
"""

from __future__ import annotations


class RuncastError(Exception):
    """Anything the runcast client raises about the server or its answers."""


class Refused(RuncastError):
    """The server refused the request; the message says why, in the server's words."""


class RunNotFound(Refused):
    def __init__(self, run_id: str, message: str | None = None) -> None:
        super().__init__(message or f"Run {run_id} not found")
        self.run_id = run_id


class WorkflowNotFound(Refused):
    def __init__(self, workflow_id: str, message: str | None = None) -> None:
        super().__init__(message or f"Workflow {workflow_id} not found")
        self.workflow_id = workflow_id


class HistoryGone(Refused):
    """The run's events are no longer kept (`--retention` of a Redis store): no replay."""

    def __init__(self, run_id: str, message: str | None = None) -> None:
        super().__init__(message or f"the history of run {run_id} is gone")
        self.run_id = run_id


class AuthenticationFailed(Refused):
    """The server wants a token and was given none, or a wrong one."""


class ServerError(RuncastError):
    """The server failed to serve the request."""


class ConnectionLost(RuncastError):
    """The server cannot be reached or the connection broke; the cause is chained."""
