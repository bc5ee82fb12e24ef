"""Real WebSocket and HTTP clients for tests: trio-websocket speaking JSON frames, httpx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

TERMINAL = ("WorkflowCompleted", "WorkflowError")


class JsonSocket:
    """One client connection; `connected` holds the server's greeting frame."""

    def __init__(self, ws: WebSocketConnection, connected: dict[str, Any]) -> None:
        self.ws = ws
        self.connected = connected

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.ws.send_message(message if isinstance(message, str | bytes) else json.dumps(message))

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        with trio.fail_after(timeout):
            return json.loads(await self.ws.get_message())

    async def recv_until_terminal(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Every frame up to and including the next WorkflowCompleted / WorkflowError."""
        frames = []
        with trio.fail_after(timeout):
            while True:
                frame = json.loads(await self.ws.get_message())
                frames.append(frame)
                if frame.get("event") in TERMINAL:
                    return frames

    async def start(self, workflow_id: str = "content-creation-workflow", **fields: Any) -> dict[str, Any]:
        """Start a run; returns its WorkflowStarted event."""
        await self.send({"action": "start-workflow", "workflow_id": workflow_id, **fields})
        return await self.recv()


@asynccontextmanager
async def ws_client(url: str) -> AsyncIterator[JsonSocket]:
    async with open_websocket_url(url) as ws:
        with trio.fail_after(10):
            connected = json.loads(await ws.get_message())
        yield JsonSocket(ws, connected)


def events_only(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop control frames (catch_up, subscribed, replay...): keep run events."""
    return [f for f in frames if "event_index" in f]
