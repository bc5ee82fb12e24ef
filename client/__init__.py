"""runcast's Python client: `RuncastClient` (HTTP and the workflow WebSocket protocol, on trio
or asyncio), the `runcast runs` command (`client.cli`), and the exceptions both raise. It
imports nothing of the server (`actors`, `web`)."""

from client.backoff import Backoff
from client.client import DEFAULT_URL, RuncastClient
from client.errors import (
    AuthenticationFailed,
    ConnectionLost,
    HistoryGone,
    Refused,
    RunNotFound,
    RuncastError,
    ServerError,
    WorkflowNotFound,
)
from client.events import RunEvent, RunInfo, StartedRun, WorkflowInfo
from client.watch import Watch

__all__ = [
    "DEFAULT_URL",
    "AuthenticationFailed",
    "Backoff",
    "ConnectionLost",
    "HistoryGone",
    "Refused",
    "RunEvent",
    "RunInfo",
    "RunNotFound",
    "RuncastClient",
    "RuncastError",
    "ServerError",
    "StartedRun",
    "Watch",
    "WorkflowInfo",
    "WorkflowNotFound",
]
