"""The tiny actor kit: a mailbox, an address to reach it, tell and ask.

An actor is any object that owns a `Mailbox` and serves it with `serve_mailbox`: one task takes
messages one at a time, so the state the handler touches needs no lock. Callers hold an
`Address`; `tell` delivers a message, `ask` delivers one carrying a `Reply` and waits for the
answer. When an actor stops for good, every message still queued has its reply failed with
`ActorGone`, so no asker ever waits forever.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import attrs
import trio

T = TypeVar("T")
M = TypeVar("M")


class ActorGone(Exception):
    """The actor behind an address has stopped; the message was not handled."""


class Reply(Generic[T]):
    """A one-shot answer slot: the actor sets a value or an error once, the asker awaits it."""

    __slots__ = ("_done", "_value", "_error")

    def __init__(self) -> None:
        self._done = trio.Event()
        self._value: T | None = None
        self._error: BaseException | None = None

    def set(self, value: T) -> None:
        if not self._done.is_set():
            self._value = value
            self._done.set()

    def fail(self, error: BaseException) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    async def wait(self) -> T:
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set() ran: `_value` is a T now


@attrs.define
class Mailbox(Generic[M]):
    """Both ends of an actor's message queue. It outlives a crash of the task serving it, so an
    actor restarted in place keeps its address and the messages already queued."""

    name: str
    send: trio.MemorySendChannel[M]
    receive: trio.MemoryReceiveChannel[M]

    @classmethod
    def open(cls, name: str, capacity: float = math.inf) -> Mailbox[M]:
        send, receive = trio.open_memory_channel[M](capacity)
        return cls(name, send, receive)

    @property
    def address(self) -> Address[M]:
        return Address(self.name, self.send)

    def finish(self) -> None:
        """Take no new messages; the task serving the mailbox answers those queued, then
        returns."""
        self.send.close()

    def close(self) -> None:
        """Stop for good: fail the replies of queued requests, then refuse new messages."""
        while True:
            try:
                message = self.receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            reply = getattr(message, "reply", None)
            if isinstance(reply, Reply):
                reply.fail(ActorGone(self.name))
        self.receive.close()


@attrs.frozen
class Address(Generic[M]):
    """Where to reach an actor. Cheap to copy; says nothing about whether the actor still runs."""

    name: str
    _send: trio.MemorySendChannel[M] = attrs.field(repr=False)

    def tell(self, message: M) -> None:
        """Queue a message without waiting (mailboxes are unbounded)."""
        try:
            self._send.send_nowait(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ActorGone(self.name) from None

    async def ask(self, make: Callable[[Reply[T]], M]) -> T:
        """Send the message `make(reply)` and wait for the actor's answer."""
        reply: Reply[T] = Reply()
        self.tell(make(reply))
        return await reply.wait()


async def serve_mailbox(mailbox: Mailbox[M], handle: Callable[[M], Awaitable[None]]) -> None:
    """Take messages one at a time until cancelled, or until the mailbox is finished and every
    message queued is handled. If the handler raises, the reply of the message in hand is failed
    with that error before it propagates to the supervisor."""
    while True:
        try:
            message = await mailbox.receive.receive()
        except trio.EndOfChannel:
            return
        try:
            await handle(message)
        except BaseException as error:
            reply = getattr(message, "reply", None)
            if isinstance(reply, Reply):
                reply.fail(ActorGone(mailbox.name) if isinstance(error, trio.Cancelled) else error)
            raise
