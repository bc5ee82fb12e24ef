"""The feed between a run and one follower: batches in, batches out, bounded, never blocking."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from actors.feed import Feed


def frames(start: int, stop: int) -> list[str]:
    return [f"frame {i}" for i in range(start, stop)]


def indices(taken: tuple[int, list[str]]) -> list[int]:
    """The indices of a taken batch, checked against its frames."""
    first, batch = taken
    assert batch == frames(first, first + len(batch))
    return list(range(first, first + len(batch)))


async def test_batches_come_out_in_order_at_most_the_asked_number_at_a_time() -> None:
    feed = Feed(10)
    assert feed.push(0, frames(0, 3))
    assert feed.push(3, frames(3, 7))
    assert indices(await feed.take(5)) == [0, 1, 2, 3, 4]
    assert indices(await feed.take(5)) == [5, 6]
    assert feed.push(7, frames(7, 8))
    assert indices(await feed.take(5)) == [7]


@pytest.mark.parametrize("wake", ["push", "close"])
async def test_a_waiting_follower_wakes_for_a_push_or_for_the_close(wake: str) -> None:
    feed = Feed(4)
    taken: list[tuple[int, list[str]]] = []

    async def follower() -> None:
        taken.append(await feed.take(100))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follower)
        await trio.testing.wait_all_tasks_blocked()
        assert taken == []
        if wake == "push":
            feed.push(5, frames(5, 7))
        else:
            feed.close()
    assert [indices(batch) for batch in taken] == ([[5, 6]] if wake == "push" else [[]])


async def test_a_push_that_does_not_fit_adds_what_fits_then_the_feed_is_lagged_and_closed() -> None:
    feed = Feed(4)
    assert feed.push(0, frames(0, 3))
    assert not feed.push(3, frames(3, 6))
    assert feed.lagged and feed.closed and not feed.ended
    assert not feed.push(6, frames(6, 7))  # closed: the run drops it
    assert indices(await feed.take(100)) == [0, 1, 2, 3]
    assert indices(await feed.take(100)) == []


async def test_the_push_of_the_terminal_event_ends_the_feed() -> None:
    feed = Feed(4)
    assert not feed.push(0, frames(0, 2), last=True)
    assert feed.ended and feed.closed and not feed.lagged
    assert indices(await feed.take(100)) == [0, 1]
    assert indices(await feed.take(100)) == []


async def test_a_terminal_event_that_does_not_fit_leaves_the_feed_lagged_not_ended() -> None:
    feed = Feed(2)
    assert not feed.push(0, frames(0, 3), last=True)
    assert feed.lagged and not feed.ended


async def test_a_feed_closed_by_its_follower_refuses_pushes_without_being_lagged() -> None:
    feed = Feed(4)
    feed.close()
    assert not feed.push(0, frames(0, 1))
    assert not feed.lagged and not feed.ended
    assert indices(await feed.take(100)) == []


async def test_take_is_a_checkpoint_even_with_events_waiting() -> None:
    feed = Feed(4)
    feed.push(0, frames(0, 1))
    with trio.CancelScope() as scope:
        scope.cancel()
        await feed.take(100)
    assert scope.cancelled_caught
    assert indices(await feed.take(100)) == [0]  # nothing was taken by the cancelled call


def test_a_feed_holds_at_least_one_event() -> None:
    with pytest.raises(ValueError, match="capacity must be at least 1, not 0"):
        Feed(0)


@given(
    capacity=st.integers(1, 8),
    steps=st.lists(st.one_of(st.integers(1, 6), st.integers(-6, -1)), max_size=40),
)
def test_what_comes_out_is_what_went_in_in_order_until_the_feed_overflows(
    capacity: int, steps: list[int]
) -> None:
    """Positive steps have the run push that many events, negative ones have the follower take
    up to that many. The follower gets what the feed accepted, in order, without a gap; the feed
    accepts everything until a push finds too little room, takes what fits, and is lagged."""

    async def main() -> None:
        feed = Feed(capacity)
        published = accepted = 0
        out: list[int] = []
        for step in steps:
            if step > 0:
                if not feed.closed:
                    accepted += min(step, capacity - (accepted - len(out)))
                feed.push(published, frames(published, published + step))
                published += step
            elif len(out) < accepted:
                batch = indices(await feed.take(-step))
                assert 0 < len(batch) <= -step
                out += batch
        if len(out) < accepted:
            out += indices(await feed.take(capacity))
        assert out == list(range(accepted))
        assert feed.lagged is (accepted < published)

    trio.run(main)
