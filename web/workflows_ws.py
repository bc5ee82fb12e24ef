"""`/workflows/ws`: one client connection speaking the Agno-compatible workflow protocol.

The connection reads commands one at a time and answers them; every run it follows (the runs it
started, the ones it reconnected to) has a pump task that sends that run's frames, so one socket
can follow several runs. A second `reconnect` to a run this socket already follows replaces the
first pump instead of doubling every event. Any bad command gets an error frame and the socket
stays usable. When the server shuts down, pumps deliver their runs' final events, then the socket
is closed with 1001. `authenticate` compares tokens in constant time (`hmac.compare_digest`), and
a socket whose `authenticate` failed `MAX_FAILED_AUTHENTICATIONS` times gets that last
`auth_error`, then is closed with 1008 (policy violation): guessing tokens costs a connection
every few tries.

A run the store cannot end (`RunLost`: it cannot write, see `actors.run`) gets an error frame with
its `run_id` naming the storage problem, and its pump ends; a socket left following no run then is
closed with 1011. While the store cannot write, `start-workflow` is refused with an error frame
that says so. A follow that the store cannot serve (Redis gone: the live stream is interrupted)
gets such a frame too and ends the same way; the client reconnects later from its last index. A
run whose history is gone (`--retention`) gets an error frame saying so.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence

import trio

from actors import (
    IndexBeyondRun,
    RunLost,
    Runtime,
    RuntimeClosing,
    StoreUnavailable,
    UnknownRun,
    UnknownWorkflow,
)
from actors.excerpt import excerpt
from actors.follow import Follow
from actors.store import HistoryGone, StorageFailed
from web import protocol
from web.asgi_websocket import WebSocketLike
from web.closing import close_handshake
from web.commands import (
    Authenticate,
    BadCommand,
    CancelRun,
    Command,
    Ping,
    Reconnect,
    StartWorkflow,
    parse_command,
)
from web.protocol import Mode, SubscriptionFraming
from web.shutdown import PUMP_FLUSH_TIMEOUT

log = logging.getLogger(__name__)

MAX_FAILED_AUTHENTICATIONS = 5


class WorkflowSocket:
    def __init__(
        self,
        runtime: Runtime,
        websocket: WebSocketLike,
        *,
        token: str | None,
        server_closing: trio.Event,
        authenticated: bool = False,
    ) -> None:
        self.runtime = runtime
        self.websocket = websocket
        self.token = token
        self.server_closing = server_closing
        self.authenticated = authenticated or token is None
        self._failed_authentications = 0
        self._close = (1001, "server shutting down")  # how `serve` closes the socket
        self._connection = trio.CancelScope()
        self._pumps: dict[str, trio.CancelScope] = {}
        self._pumps_idle = trio.Event()
        self._pumps_idle.set()

    async def serve(self) -> None:
        """Until the client leaves (`receive` raises WebSocketDisconnected), the server shuts
        down (close 1001), the client failed `authenticate` too often (close 1008), or the only
        run it followed is lost (close 1011)."""
        await self.websocket.send(protocol.connected(requires_auth=self.token is not None))
        with self._connection:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_commands, nursery)
                await self.server_closing.wait()
                with trio.move_on_after(PUMP_FLUSH_TIMEOUT):
                    await self._pumps_idle.wait()
                nursery.cancel_scope.cancel()
        await close_handshake(self.websocket, *self._close)

    def _end(self, code: int, reason: str) -> None:
        """End the connection's tasks; `serve` then closes the socket with `code`."""
        self._close = (code, reason)
        self._connection.cancel()

    async def _read_commands(self, nursery: trio.Nursery) -> None:
        """Answer commands until the client leaves (`receive` raises) or has failed
        `authenticate` MAX_FAILED_AUTHENTICATIONS times."""
        while self._failed_authentications < MAX_FAILED_AUTHENTICATIONS:
            frame = await self.websocket.receive()
            await self._dispatch(frame, nursery)
        self._end(1008, "too many failed authentications")

    async def _dispatch(self, frame: str | bytes, nursery: trio.Nursery) -> None:
        try:
            command = parse_command(frame)
        except BadCommand as bad:
            await self.websocket.send(protocol.error(str(bad)))
            return
        if not self.authenticated and not isinstance(command, Ping | Authenticate):
            await self.websocket.send(
                protocol.auth_error("Authentication required: send an authenticate action first")
            )
            return
        try:
            await self._answer(command, nursery)
        except (
            UnknownWorkflow, UnknownRun, IndexBeyondRun, RuntimeClosing, StoreUnavailable, RunLost,
            HistoryGone,
        ) as refused:
            await self.websocket.send(protocol.error(str(refused)))
        except StorageFailed as failure:
            await self.websocket.send(
                protocol.error(f"the store cannot be read, try again later: {failure}")
            )
        except Exception as failure:
            log.exception("error while handling %r", command)
            problem = excerpt(str(failure))  # the text of any exception may hold the command's
            await self.websocket.send(
                protocol.error(f"internal error: {type(failure).__name__}: {problem}")
            )

    async def _answer(self, command: Command, nursery: trio.Nursery) -> None:
        if isinstance(command, Ping):
            await self.websocket.send(protocol.PONG)
        elif isinstance(command, Authenticate):
            await self._authenticate(command)
        elif isinstance(command, StartWorkflow):
            follow = await self.runtime.start_and_follow(
                command.workflow_id, command.message, command.session_id, command.user_id
            )
            self._start_pump(nursery, follow, Mode.STARTED)
        elif isinstance(command, Reconnect):
            await self._reconnect(command, nursery)
        elif isinstance(command, CancelRun):
            await self._cancel(command)

    async def _authenticate(self, command: Authenticate) -> None:
        if self.token is None:
            self.authenticated = True
            await self.websocket.send(protocol.AUTHENTICATED)
        elif not command.token:
            self._failed_authentications += 1
            await self.websocket.send(protocol.auth_error("Token is required"))
        elif not hmac.compare_digest(command.token.encode(), self.token.encode()):
            self._failed_authentications += 1
            await self.websocket.send(protocol.auth_error("Invalid token"))
        else:
            self.authenticated = True
            await self.websocket.send(protocol.AUTHENTICATED)

    async def _reconnect(self, command: Reconnect, nursery: trio.Nursery) -> None:
        last = command.last_event_index
        start = 0 if last is None else last + 1
        follow = await self.runtime.follow(command.run_id, start)
        self._start_pump(nursery, follow, Mode.RECONNECT)

    async def _cancel(self, command: CancelRun) -> None:
        outcome = await self.runtime.cancel(command.run_id, command.reason or "cancelled by client")
        if outcome.cancelling:
            await self.websocket.send(protocol.cancel_requested(command.run_id))
        elif outcome.status.finished:
            await self.websocket.send(
                protocol.error(f"Run {command.run_id} is already finished ({outcome.status.value})")
            )
        else:
            await self.websocket.send(
                protocol.error(f"Run {command.run_id} is already being cancelled")
            )

    def _start_pump(self, nursery: trio.Nursery, follow: Follow, mode: Mode) -> None:
        previous = self._pumps.pop(follow.run_id, None)
        if previous is not None:
            previous.cancel()
        scope = trio.CancelScope()
        self._pumps[follow.run_id] = scope
        self._pumps_idle = trio.Event()
        framing = SubscriptionFraming(
            follow.run_id, follow.snapshot.status, follow.snapshot.event_count, follow.missed, mode
        )
        nursery.start_soon(self._pump, follow, framing, scope)

    async def _pump(self, follow: Follow, framing: SubscriptionFraming, scope: trio.CancelScope) -> None:
        delivered = 0

        async def send_events(frames: Sequence[str]) -> None:
            nonlocal delivered
            texts = framing.with_events(delivered, frames)
            delivered += len(frames)
            await self.websocket.send_many(texts)

        try:
            with scope:
                for opening in framing.opening():
                    await self.websocket.send(opening)
                await follow.stream_batches(send_events)
        except HistoryGone as gone:
            await self.websocket.send(protocol.run_error(follow.run_id, str(gone)))
        except RunLost as lost:
            await self.websocket.send(protocol.run_error(follow.run_id, str(lost)))
            if self._pumps.keys() <= {follow.run_id}:
                self._end(1011, "run lost: the store cannot write")
        except StorageFailed as failure:
            interrupted = (
                f"the live stream of run {follow.run_id} is interrupted: {failure}; reconnect"
                " later with the last event index seen"
            )
            await self.websocket.send(protocol.run_error(follow.run_id, interrupted))
            if self._pumps.keys() <= {follow.run_id}:
                self._end(1011, "the store cannot be read")
        except Exception as failure:
            log.exception("pump of run %s failed", follow.run_id)
            await self.websocket.send(
                protocol.error(f"following run {follow.run_id} failed: {failure}")
            )
        finally:
            if self._pumps.get(follow.run_id) is scope:
                del self._pumps[follow.run_id]
            if not self._pumps:
                self._pumps_idle.set()
