"""client/backoff.py: each wait lies between half and the whole of its span, spans grow by
`factor` from `first` up to `ceiling`, a watch gives up once it has been in trouble for
`give_up_after` seconds (never with None), and an answer from the server starts over."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.backoff import Backoff, Retrying

SECONDS = st.floats(0.001, 100, allow_nan=False)


@st.composite
def backoffs(draw: st.DrawFn) -> Backoff:
    first = draw(SECONDS)
    ceiling = draw(st.floats(first, 1000))
    factor = draw(st.floats(1, 10))
    return Backoff(first, ceiling, factor, draw(st.none() | st.floats(0, 1000)))


@given(backoffs(), st.integers(0, 5000), st.integers(0, 2**32))
def test_a_wait_is_half_to_all_of_its_span(backoff: Backoff, attempt: int, seed: int) -> None:
    span = backoff.span(attempt)
    growth = math.log(backoff.ceiling / backoff.first)
    reaches_ceiling = attempt * math.log(backoff.factor) >= growth
    grown = backoff.ceiling if reaches_ceiling else backoff.first * backoff.factor**attempt
    assert span == pytest.approx(min(backoff.ceiling, grown))
    assert backoff.first <= span <= backoff.ceiling
    assert span <= backoff.span(attempt + 1)
    wait = backoff.delay(attempt, random.Random(seed))
    assert span / 2 <= wait <= span


@given(backoffs(), st.integers(0, 2**32), st.lists(st.floats(0, 50), min_size=1, max_size=50))
def test_gives_up_after_the_budget_of_trouble(
    backoff: Backoff, seed: int, gaps: list[float]
) -> None:
    retrying = Retrying(backoff, random.Random(seed))
    now = 1000.0
    for attempt, gap in enumerate(gaps):
        wait = retrying.failed(now)
        spent = now - 1000.0
        budget = backoff.give_up_after
        if budget is not None and spent >= budget - 1e-9:  # at the budget: either, for rounding
            assert wait is None or spent < budget
            return
        assert wait is not None
        assert 0 <= wait <= backoff.span(attempt)
        if backoff.give_up_after is not None:
            assert spent + wait <= backoff.give_up_after + 1e-9  # the last try comes in time
        now += wait + gap


def test_an_answer_starts_over() -> None:
    retrying = Retrying(Backoff(first=1, ceiling=100, factor=2, give_up_after=10), random.Random(1))
    assert (wait := retrying.failed(0)) is not None and 0.5 <= wait <= 1
    assert (wait := retrying.failed(1)) is not None and 1 <= wait <= 2
    assert (wait := retrying.failed(3)) is not None and 2 <= wait <= 4
    assert retrying.failed(10) is None  # ten seconds of trouble
    retrying.answered()
    assert (wait := retrying.failed(500)) is not None and 0.5 <= wait <= 1  # trouble from 500 on
    assert retrying.failed(509) is not None
    assert retrying.failed(510) is None


def test_never_gives_up_without_a_budget() -> None:
    retrying = Retrying(Backoff(first=0.1, ceiling=5, give_up_after=None), random.Random(2))
    waits = [retrying.failed(hour * 3600.0) for hour in range(1000)]
    assert all(wait is not None and 2.5 <= wait <= 5 for wait in waits[10:])


def test_zero_budget_gives_up_at_the_first_failure() -> None:
    assert Retrying(Backoff(give_up_after=0)).failed(5.0) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"first": 0}, "first must be a positive number of seconds, got 0"),
        ({"ceiling": math.inf}, "ceiling must be a positive number of seconds, got inf"),
        ({"factor": 0.5}, "factor must be 1 or more, got 0.5"),
        ({"give_up_after": -1}, "give_up_after must be 0 or more seconds, or None, got -1"),
        ({"first": 5, "ceiling": 1}, r"ceiling \(1\) must be at least first \(5\)"),
    ],
)
def test_bad_settings_are_refused_by_name(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Backoff(**fields)
