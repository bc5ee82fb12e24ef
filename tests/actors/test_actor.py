"""actors/actor.py: mailbox, address, tell/ask, one-shot replies, and no asker left waiting."""

from __future__ import annotations

import contextlib
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from actors.actor import ActorGone, Address, Mailbox, Reply, serve_mailbox


@attrs.frozen
class Add:
    """A request: add `amount` to the counter and answer with the new total."""

    amount: int
    reply: Reply[int]


@attrs.frozen
class Note:
    """A fire-and-forget message."""

    text: str


@attrs.frozen
class Boom:
    reply: Reply[int]


class Counter:
    """A minimal actor: state touched only by the task serving its mailbox."""

    def __init__(self, mailbox: Mailbox[object]) -> None:
        self.mailbox = mailbox
        self.total = 0
        self.notes: list[str] = []

    async def handle(self, message: object) -> None:
        if isinstance(message, Add):
            self.total += message.amount
            message.reply.set(self.total)
        elif isinstance(message, Note):
            self.notes.append(message.text)
        elif isinstance(message, Boom):
            raise ValueError("boom")


# --- Reply -------------------------------------------------------------------------------------


async def answered(reply: Reply[Any]) -> bool:
    """Whether `reply.wait()` returns (a value, or raises the error of a failed reply) at once,
    without waiting for an answer."""
    returned = False

    async def wait() -> None:
        nonlocal returned
        with contextlib.suppress(Exception):
            await reply.wait()
        returned = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return returned


async def test_reply_set_is_returned_by_wait() -> None:
    reply: Reply[int] = Reply()
    assert not await answered(reply)
    reply.set(7)
    assert await answered(reply)
    assert await reply.wait() == 7


async def test_reply_set_none_is_a_value_not_an_error() -> None:
    reply: Reply[None] = Reply()
    reply.set(None)
    assert await reply.wait() is None


async def test_reply_fail_raises_the_error_in_the_waiter() -> None:
    reply: Reply[int] = Reply()
    error = KeyError("nope")
    reply.fail(error)
    assert await answered(reply)
    with pytest.raises(KeyError) as raised:
        await reply.wait()
    assert raised.value is error


async def test_reply_is_answered_once_later_answers_are_ignored() -> None:
    """The first answer wins: neither a second set nor a later fail changes it."""
    reply: Reply[int] = Reply()
    reply.set(1)
    reply.set(2)
    reply.fail(RuntimeError("late"))
    assert await reply.wait() == 1

    failed: Reply[int] = Reply()
    failed.fail(ValueError("first"))
    failed.set(3)
    failed.fail(RuntimeError("second"))
    with pytest.raises(ValueError, match="first"):
        await failed.wait()


async def test_reply_wait_blocks_until_answered() -> None:
    reply: Reply[str] = Reply()
    got: list[str] = []

    async def waiter() -> None:
        got.append(await reply.wait())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        reply.set("hello")
    assert got == ["hello"]


# --- tell / ask --------------------------------------------------------------------------------


async def test_tell_and_ask_are_served_in_order() -> None:
    mailbox: Mailbox[object] = Mailbox.open("counter")
    counter = Counter(mailbox)
    address: Address[object] = mailbox.address
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_mailbox, mailbox, counter.handle)
            address.tell(Note("a"))
            address.tell(Note("b"))
            assert await address.ask(lambda reply: Add(2, reply)) == 2
            assert await address.ask(lambda reply: Add(3, reply)) == 5
            address.tell(Note("c"))
            assert await address.ask(lambda reply: Add(0, reply)) == 5
            nursery.cancel_scope.cancel()
    assert counter.notes == ["a", "b", "c"]
    assert address.name == "counter"


async def test_many_concurrent_asks_each_get_their_own_answer() -> None:
    mailbox: Mailbox[object] = Mailbox.open("counter")
    counter = Counter(mailbox)
    answers: list[int] = []

    async def asker() -> None:
        answers.append(await mailbox.address.ask(lambda reply: Add(1, reply)))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_mailbox, mailbox, counter.handle)
            async with trio.open_nursery() as askers:
                for _ in range(50):
                    askers.start_soon(asker)
            nursery.cancel_scope.cancel()
    assert sorted(answers) == list(range(1, 51))


async def test_a_finished_mailbox_is_served_to_its_last_message_and_takes_no_more() -> None:
    mailbox: Mailbox[object] = Mailbox.open("finishing")
    counter = Counter(mailbox)
    address: Address[object] = mailbox.address
    address.tell(Note("a"))
    asked = Reply[int]()
    address.tell(Add(4, asked))
    mailbox.finish()
    with pytest.raises(ActorGone, match="finishing"):
        address.tell(Note("late"))
    with trio.fail_after(5):
        await serve_mailbox(mailbox, counter.handle)  # returns by itself
    assert counter.notes == ["a"]
    assert await asked.wait() == 4


async def test_tell_to_a_closed_mailbox_raises_actor_gone() -> None:
    mailbox: Mailbox[object] = Mailbox.open("gone")
    address = mailbox.address
    mailbox.close()
    with pytest.raises(ActorGone, match="gone"):
        address.tell(Note("x"))
    with pytest.raises(ActorGone):
        await address.ask(lambda reply: Add(1, reply))


async def test_tell_after_send_side_closed_raises_actor_gone() -> None:
    mailbox: Mailbox[object] = Mailbox.open("shut")
    mailbox.send.close()
    with pytest.raises(ActorGone):
        mailbox.address.tell(Note("x"))


# --- Mailbox.close -----------------------------------------------------------------------------


async def test_close_fails_the_replies_of_queued_requests() -> None:
    """No asker waits forever: requests still queued when the actor stops get ActorGone."""
    mailbox: Mailbox[object] = Mailbox.open("stopping")
    outcomes: list[BaseException | int] = []

    async def asker(amount: int) -> None:
        try:
            outcomes.append(await mailbox.address.ask(lambda reply: Add(amount, reply)))
        except ActorGone as error:
            outcomes.append(error)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            for amount in range(3):
                nursery.start_soon(asker, amount)
            mailbox.address.tell(Note("no reply to fail"))
            await trio.testing.wait_all_tasks_blocked()
            assert outcomes == []
            mailbox.close()
    assert len(outcomes) == 3
    assert all(isinstance(o, ActorGone) and str(o) == "stopping" for o in outcomes)


async def test_close_twice_is_harmless() -> None:
    mailbox: Mailbox[object] = Mailbox.open("twice")
    reply: Reply[int] = Reply()
    mailbox.address.tell(Add(1, reply))
    mailbox.close()
    mailbox.close()
    with pytest.raises(ActorGone):
        await reply.wait()


async def test_close_does_not_touch_requests_already_answered() -> None:
    mailbox: Mailbox[object] = Mailbox.open("answered")
    reply: Reply[int] = Reply()
    mailbox.address.tell(Add(1, reply))
    reply.set(42)
    mailbox.close()
    assert await reply.wait() == 42


# --- serve_mailbox -----------------------------------------------------------------------------


async def test_serve_mailbox_fails_the_reply_of_the_message_whose_handler_raised() -> None:
    """The asker of the crashing message gets the handler's error; the error still reaches the
    supervisor (re-raised), and the messages queued behind it stay in the mailbox."""
    mailbox: Mailbox[object] = Mailbox.open("crashy")
    counter = Counter(mailbox)
    boom: Reply[int] = Reply()
    behind: Reply[int] = Reply()
    mailbox.address.tell(Add(1, Reply()))
    mailbox.address.tell(Boom(boom))
    mailbox.address.tell(Add(10, behind))
    with trio.fail_after(5):
        with pytest.raises(ValueError, match="boom"):
            await serve_mailbox(mailbox, counter.handle)
    with pytest.raises(ValueError, match="boom"):
        await boom.wait()
    assert not await answered(behind)
    # A restarted incarnation serving the same mailbox handles what was queued behind the crash.
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_mailbox, mailbox, counter.handle)
            assert await behind.wait() == 11
            nursery.cancel_scope.cancel()


async def test_serve_mailbox_reraises_errors_of_messages_without_reply() -> None:
    mailbox: Mailbox[object] = Mailbox.open("tell-crash")

    async def handle(message: object) -> None:
        raise RuntimeError(f"cannot handle {message!r}")

    mailbox.address.tell(Note("x"))
    with trio.fail_after(5), pytest.raises(RuntimeError, match="cannot handle"):
        await serve_mailbox(mailbox, handle)


async def test_cancelled_handler_fails_its_reply_with_actor_gone() -> None:
    """An actor cancelled mid-request answers that request with ActorGone, not Cancelled."""
    mailbox: Mailbox[object] = Mailbox.open("slow")
    in_handler = trio.Event()

    async def handle(message: object) -> None:
        in_handler.set()
        await trio.sleep_forever()

    reply: Reply[int] = Reply()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_mailbox, mailbox, handle)
            mailbox.address.tell(Add(1, reply))
            await in_handler.wait()
            nursery.cancel_scope.cancel()
    with pytest.raises(ActorGone, match="slow"):
        await reply.wait()
