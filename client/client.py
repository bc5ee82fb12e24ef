"""`RuncastClient`: a Python client of a runcast server, on trio or asyncio (anyio), speaking
only the server's public protocols: HTTP (`/workflows`, `/runs`, `/runs/{run_id}`) through
httpx, and the workflow WebSocket protocol (`/workflows/ws`: `start-workflow`, `reconnect`,
`cancel-run`, `authenticate`) through httpx-ws.

`watch` and `replay` resume by themselves after a lost connection (`client.watch`); every other
call is one request, which raises `ConnectionLost` at once when the server cannot be reached.
"""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import anyio
import httpx
from anyio.abc import TaskGroup
from httpx_ws import AsyncWebSocketClient, AsyncWebSocketSession

from client.backoff import Backoff, Retrying
from client.cursor import WatchCursor, event_index, refusal
from client.errors import (
    AuthenticationFailed,
    ConnectionLost,
    HistoryGone,
    Refused,
    RunNotFound,
    ServerError,
)
from client.events import RunEvent, RunInfo, StartedRun, WorkflowInfo
from client.session import Session, describe, open_session
from client.watch import Watch

DEFAULT_URL = "http://127.0.0.1:7777"
T = TypeVar("T")

KEEPALIVE_PING = 20.0  # seconds between WebSocket pings, which find a connection that died silently


def http_error(response: httpx.Response, run_id: str | None = None) -> Exception:
    """The exception for an HTTP answer that is not a success (`{"detail": ...}` bodies)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body["detail"] if isinstance(body, dict) and "detail" in body else response.text[:200]
    status = response.status_code
    if status == 401:
        return AuthenticationFailed(f"the server refused the token: {detail}")
    if status == 404 and run_id is not None:
        return RunNotFound(run_id, str(detail))
    if status == 410 and run_id is not None:
        return HistoryGone(run_id, str(detail))
    if 400 <= status < 500:
        return Refused(str(detail))
    return ServerError(f"{status}: {detail}")


class RuncastClient:
    """`async with RuncastClient("http://127.0.0.1:7777", token=None) as client:`.

    `backoff` says how a watch retries and when it gives up (`client.backoff`); `timeout` bounds
    each HTTP request, a WebSocket's handshake and greeting, and the answer to `start` and
    `cancel`, in seconds."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        backoff: Backoff | None = None,
        timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the server URL must be http://HOST:PORT or https://..., got {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.backoff = backoff or Backoff()
        self.timeout = timeout
        self._stack = AsyncExitStack()
        self._http: httpx.AsyncClient | None = None
        self._websockets: AsyncWebSocketClient[AsyncWebSocketSession] | None = None
        self._tasks: TaskGroup | None = None

    async def __aenter__(self) -> RuncastClient:
        async with AsyncExitStack() as stack:
            headers = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
            self._http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=self.url, headers=headers, timeout=self.timeout)
            )
            # WebSockets: a client of their own, without a pool limit (each watch holds one)
            no_pool = httpx.Limits(max_connections=None, max_keepalive_connections=0)
            sockets = await stack.enter_async_context(
                httpx.AsyncClient(timeout=self.timeout, limits=no_pool)
            )
            self._websockets = AsyncWebSocketClient(
                sockets,
                keepalive_ping_interval_seconds=KEEPALIVE_PING,
                keepalive_ping_timeout_seconds=self.timeout,
            )
            self._tasks = await stack.enter_async_context(anyio.create_task_group())
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop every watch still open, close every connection; an exception of the body goes
        on as it is."""
        assert self._tasks is not None, "RuncastClient used outside `async with`"
        self._tasks.cancel_scope.cancel()
        await self._stack.__aexit__(None, None, None)

    # the workflow WebSocket protocol

    def _session(self) -> AbstractAsyncContextManager[Session]:
        if self._websockets is None:
            raise RuntimeError("use RuncastClient in `async with RuncastClient(...) as client:`")
        return open_session(
            self._websockets, f"{self.url}/workflows/ws", self.token, self.timeout
        )

    @asynccontextmanager
    async def _answered(self, what: str) -> AsyncIterator[None]:
        """Bounds the wait for the server's answer to `what` by the client's timeout."""
        with anyio.move_on_after(self.timeout) as waited:
            yield
        if waited.cancelled_caught:
            raise ConnectionLost(f"no answer to {what} within {self.timeout} s")

    async def start(
        self,
        workflow_id: str,
        message: str = "",
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> StartedRun:
        """Start a run of `workflow_id`; the run goes on after this returns. Not retried: a
        connection lost before the answer may or may not have started a run (`ConnectionLost`).
        Raises `WorkflowNotFound`, `Refused` (the server starts no run now, and says why)."""
        command: dict[str, Any] = {
            "action": "start-workflow", "workflow_id": workflow_id, "message": message
        }
        if session_id is not None:
            command["session_id"] = session_id
        if user_id is not None:
            command["user_id"] = user_id
        async with self._session() as session, self._answered("start-workflow"):
            await session.send(command)
            started = await self._first_event(session)
        return StartedRun(
            started.run_id, workflow_id, started.data.get("session_id"), started
        )

    @staticmethod
    async def _first_event(session: Session) -> RunEvent:
        """The started run's `WorkflowStarted`, or the refusal of the start."""
        while True:
            frame, raw = await session.receive()
            kind = frame.get("event")
            if kind == "error":
                problem = str(frame.get("error"))
                raise refusal(problem) or Refused(problem)
            index = event_index(frame)
            run_id = frame.get("run_id")
            if index == 0 and isinstance(kind, str) and isinstance(run_id, str):
                return RunEvent(index, kind, run_id, frame, raw)

    async def cancel(self, run_id: str, reason: str | None = None) -> None:
        """Ask the run to stop: it ends with `WorkflowCancelled` then `WorkflowCompleted`, both
        carrying `reason`. Raises `RunNotFound`, or `Refused` for a run already finished or
        already being cancelled."""
        command: dict[str, Any] = {"action": "cancel-run", "run_id": run_id}
        if reason is not None:
            command["reason"] = reason
        async with self._session() as session, self._answered("cancel-run"):
            await session.send(command)
            while True:
                frame, _ = await session.receive()
                if frame.get("event") == "cancel_requested" and frame.get("run_id") == run_id:
                    return
                if frame.get("event") == "error":
                    problem = str(frame.get("error"))
                    raise refusal(problem, run_id) or Refused(problem)

    def watch(self, run_id: str, from_index: int = 0) -> Watch:
        """The run's events from `from_index` to its end (`WorkflowCompleted`/`WorkflowError`),
        each exactly once and in order, live while it runs, resuming by itself after a lost
        connection (see `client.watch`). Use as `async for event in client.watch(run_id)`, or
        in `async with client.watch(run_id) as events:` to stop early."""
        return self._watch(WatchCursor.starting_at(run_id, from_index))

    async def replay(self, run_id: str) -> list[RunEvent]:
        """The run's events so far: all of them for a finished run; for a running one, those
        it had when the server answered (without waiting for more). Resumes like `watch`."""
        async with self._watch(WatchCursor.starting_at(run_id, 0, snapshot=True)) as events:
            return [event async for event in events]

    def _watch(self, cursor: WatchCursor) -> Watch:
        if self._tasks is None:
            raise RuntimeError("use RuncastClient in `async with RuncastClient(...) as client:`")
        return Watch(cursor, self._session, Retrying(self.backoff, random.Random()), self._tasks)

    # HTTP

    async def _get(
        self, path: str, params: dict[str, Any] | None = None, run_id: str | None = None
    ) -> Any:
        if self._http is None:
            raise RuntimeError("use RuncastClient in `async with RuncastClient(...) as client:`")
        try:
            response = await self._http.get(path, params=params)
        except httpx.TransportError as unreachable:
            problem = describe(unreachable)
            raise ConnectionLost(f"cannot reach {self.url}: {problem}") from unreachable
        if not response.is_success:
            raise http_error(response, run_id)
        try:
            return response.json()
        except ValueError:
            raise ServerError(f"GET {path} answered something that is not JSON") from None

    async def list_runs(
        self,
        limit: int = 100,
        status: str | None = None,
        *,
        workflow_id: str | None = None,
        run_id_prefix: str | None = None,
    ) -> list[RunInfo]:
        """The newest `limit` runs (1 to 1000), of one status (`RUNNING`, `COMPLETED`, `ERROR`,
        `CANCELLED`), of one workflow, and whose run id starts with `run_id_prefix`: each filter
        only when given."""
        runs, _ = await self._runs_page(limit, status, workflow_id, run_id_prefix, None)
        return runs

    async def all_runs(
        self,
        status: str | None = None,
        *,
        workflow_id: str | None = None,
        run_id_prefix: str | None = None,
        page_size: int = 100,
    ) -> AsyncGenerator[RunInfo, None]:
        """Every run the filters of `list_runs` select, newest first, fetched `page_size` (1 to
        1000) at a time through the server's `next` cursor: runs created meanwhile are newer
        than the pages still to come, so none is repeated or skipped."""
        before: str | None = None
        while True:
            runs, before = await self._runs_page(
                page_size, status, workflow_id, run_id_prefix, before
            )
            for run in runs:
                yield run
            if before is None:
                return

    async def _runs_page(
        self,
        limit: int,
        status: str | None,
        workflow_id: str | None,
        run_id_prefix: str | None,
        before: str | None,
    ) -> tuple[list[RunInfo], str | None]:
        """One `GET /runs` page, and the `next` cursor it gave (None after the last page)."""
        given = {"status": status, "workflow_id": workflow_id, "q": run_id_prefix, "before": before}
        params: dict[str, Any] = {"limit": limit}
        params.update((name, value) for name, value in given.items() if value is not None)
        body = await self._get("/runs", params)

        def parse() -> tuple[list[RunInfo], str | None]:
            following = body["next"]
            if following is not None and not isinstance(following, str):
                raise TypeError(f"next is {following!r}")
            return [RunInfo.from_json(run) for run in body["runs"]], following

        return self._parsed("GET /runs", parse)

    async def get_run(self, run_id: str) -> RunInfo:
        body = await self._get(f"/runs/{quote(run_id, safe='')}", run_id=run_id)
        return self._parsed("GET /runs/{run_id}", lambda: RunInfo.from_json(body))

    async def workflows(self) -> list[WorkflowInfo]:
        body = await self._get("/workflows")
        return self._parsed("GET /workflows", lambda: [WorkflowInfo.from_json(w) for w in body])

    @staticmethod
    def _parsed(route: str, parse: Callable[[], T]) -> T:
        try:
            return parse()
        except (KeyError, TypeError, ValueError) as bad:
            raise ServerError(f"{route} answered JSON of another shape: {bad!r}") from None
