"""`create_app(runtime, ...)`: the Quart-Trio application, routes only; no run logic here."""

from __future__ import annotations

import trio
from quart import websocket
from quart_trio import QuartTrio

from actors import Runtime
from web.runs_api import runs_blueprint
from web.workflows_ws import WorkflowSocket


def create_app(runtime: Runtime, *, token: str | None, server_closing: trio.Event) -> QuartTrio:
    app = QuartTrio("runcast")
    app.register_blueprint(runs_blueprint(runtime, token))

    @app.websocket("/workflows/ws")
    async def workflows_ws() -> None:
        header = websocket.headers.get("Authorization", "")
        connection = WorkflowSocket(
            runtime,
            websocket._get_current_object(),  # type: ignore[attr-defined]
            token=token,
            server_closing=server_closing,
            authenticated=token is not None and header == f"Bearer {token}",
        )
        await connection.serve()

    return app
