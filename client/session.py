"""One WebSocket connection to `/workflows/ws` (httpx-ws, on trio or asyncio through anyio):
the handshake, the server's `connected` greeting, the `authenticate` action when the client
has a token, then JSON frames each way.

Everything that goes wrong surfaces as the client's own exceptions (`client.errors`), never as
httpx's or httpx-ws's, nor wrapped in an exception group: a connection that cannot be made, or
breaks, or closes, is `ConnectionLost` (and so is a 5xx answer to the handshake, which a proxy
gives while the server restarts); a 401 or an `auth_error` is `AuthenticationFailed`; a frame
that is not a JSON object is `ServerError`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import httpx
from httpx_ws import (
    AsyncWebSocketClient,
    AsyncWebSocketSession,
    WebSocketDisconnect,
    WebSocketInvalidTypeReceived,
    WebSocketNetworkError,
    WebSocketUpgradeError,
)

from client.errors import AuthenticationFailed, ConnectionLost, Refused, ServerError

Frame = tuple[dict[str, Any], str]  # a frame's JSON object, and its text


def sole_exception(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception inside `group` (through nested groups), or the group itself when it
    holds several: what a task group around a single piece of work really raised."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exception = pending.pop()
        if isinstance(exception, BaseExceptionGroup):
            pending.extend(exception.exceptions)
        else:
            leaves.append(exception)
    return leaves[0] if len(leaves) == 1 else group


def describe(error: BaseException) -> str:
    """An exception as one line: its message, or its kind when it has none."""
    return " ".join(str(error).split()) or type(error).__name__


class Session:
    """An open, greeted (and authenticated) connection."""

    def __init__(self, websocket: AsyncWebSocketSession, url: str) -> None:
        self._websocket = websocket
        self._url = url

    async def send(self, command: dict[str, Any]) -> None:
        try:
            await self._websocket.send_text(json.dumps(command))
        except WebSocketNetworkError as broken:
            raise ConnectionLost(f"the connection to {self._url} broke") from broken

    async def receive(self) -> Frame:
        try:
            text = await self._websocket.receive_text()
        except WebSocketDisconnect as closed:
            reason = f" ({closed.reason})" if closed.reason else ""
            closing = f"the server closed the connection with {closed.code}{reason}"
            raise ConnectionLost(closing) from None
        except WebSocketNetworkError as broken:
            raise ConnectionLost(f"the connection to {self._url} broke") from broken
        except WebSocketInvalidTypeReceived:
            raise ServerError("the server sent a binary frame on /workflows/ws") from None
        try:
            frame = json.loads(text)
        except ValueError:
            raise ServerError(f"the server sent a frame that is not JSON: {text[:200]!r}") from None
        if not isinstance(frame, dict):
            raise ServerError(f"the server sent a frame that is not a JSON object: {text[:200]!r}")
        return frame, text

    async def greet(self, token: str | None) -> None:
        """Read `connected`; authenticate when there is a token."""
        greeting, text = await self.receive()
        if greeting.get("event") != "connected":
            raise ServerError(f"the server did not greet with 'connected', it sent {text[:200]!r}")
        if token is None:
            if greeting.get("requires_auth"):
                raise AuthenticationFailed(
                    "the server requires a token, and none was given (--token, RUNCAST_TOKEN)"
                )
            return
        await self.send({"action": "authenticate", "token": token})
        while True:
            answer, _ = await self.receive()
            if answer.get("event") == "authenticated":
                return
            if answer.get("event") == "auth_error":
                raise AuthenticationFailed(f"the server refused the token: {answer.get('error')}")


def handshake_refusal(url: str, response: httpx.Response) -> Exception:
    status = response.status_code
    if status == 401:
        return AuthenticationFailed(f"the server refused the connection to {url}: 401 Unauthorized")
    if status == 404:
        return ServerError(f"no runcast WebSocket at {url} (404): is the URL a runcast server's?")
    if status >= 500:
        return ConnectionLost(f"the WebSocket handshake at {url} was answered {status}")
    return Refused(f"the WebSocket handshake at {url} was answered {status}")


@asynccontextmanager
async def open_session(
    websockets: AsyncWebSocketClient[AsyncWebSocketSession],
    url: str,
    token: str | None,
    timeout: float,
) -> AsyncIterator[Session]:
    """A connection to `url`, greeted and authenticated within `timeout` seconds."""
    try:
        async with AsyncExitStack() as stack:
            try:
                websocket = await stack.enter_async_context(websockets.connect(url))
            except WebSocketUpgradeError as refused:
                raise handshake_refusal(url, refused.response) from None
            except (httpx.TransportError, OSError) as unreachable:
                problem = describe(unreachable)
                raise ConnectionLost(f"cannot connect to {url}: {problem}") from unreachable
            session = Session(websocket, url)
            with anyio.move_on_after(timeout) as waited:
                await session.greet(token)
            if waited.cancelled_caught:
                raise ConnectionLost(f"{url} did not greet within {timeout} s")
            yield session
    except BaseExceptionGroup as group:
        raise sole_exception(group) from None
