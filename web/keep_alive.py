"""How an HTTP exchange ends on its connection: the connection serves its next request when the
app read the request in full, and closes, its answer saying `Connection: close`, when the app
answered before reading the request's body (a 401, 403, 413 or 415 decided on the headers).

Hypercorn does that ending inside the app's last `send` (the `http.response.body` without
`more_body`): it readies the connection for its next request and restarts the keep-alive timer,
or, when the body is still unread, closes the connection rather than read the rest. Quart-Trio
cancels its handler as soon as Hypercorn tells it the request is over, which Hypercorn does
before that work is done. Cut short there, a connection answered before its body arrived would
be neither closed nor able to read another request (the next request on it would never be
answered), and an idle connection would never be closed by the keep-alive timeout. So
`end_cleanly` runs that last `send` shielded from the cancellation, and marks an answer after
which the connection closes with `Connection: close`, so that the client knows before it sends
another request on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import trio

from web.asgi_websocket import Asgi, Receive, Scope, Send


def has_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether an HTTP request with these (ASGI scope) headers has a body to read."""
    for name, value in headers:
        name = name.lower()
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


async def end_cleanly(app: Asgi, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve the HTTP request of `scope` with `app`, ending the exchange as the module says."""
    body_read = not has_body(scope["headers"])

    async def receive_noting_the_end() -> dict[str, Any]:
        nonlocal body_read
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            body_read = True
        return message

    async def send_ending_cleanly(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and not body_read:
            headers = [*message.get("headers", ()), (b"connection", b"close")]
            message = {**message, "headers": headers}
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            with trio.CancelScope(shield=True):
                await send(message)
        else:
            await send(message)

    await app(scope, receive_noting_the_end, send_ending_cleanly)
