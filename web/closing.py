"""Closing a WebSocket from the server side with the whole closing handshake.

Sending a Close frame and returning lets Hypercorn drop the TCP connection at once, before the
client has read what came before the Close: a client that decodes messages in the background
(Node's WebSocket, for one) then reports 1006 and loses the last messages. RFC 6455 says the
closer waits for the peer's Close; `close_handshake` does, for at most `CLOSE_TIMEOUT` seconds.
"""

from __future__ import annotations

import trio

from web.asgi_websocket import WebSocketLike
from web.shutdown import CLOSE_TIMEOUT


async def close_handshake(websocket: WebSocketLike, code: int, reason: str) -> None:
    """Send Close, then read (and drop) whatever the client still sends until its Close ends
    the connection (`receive` then raises WebSocketDisconnected) or the timeout passes."""
    await websocket.close(code, reason)
    with trio.move_on_after(CLOSE_TIMEOUT):
        while True:
            await websocket.receive()
