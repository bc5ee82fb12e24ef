"""When a watch tries again after a lost connection, and when it gives up: `Backoff` is the
policy, `Retrying` its state over one watch; both without I/O (the time and the random source
are given).

The n-th attempt in a row that fails (n = 0, 1, 2...) is followed by a wait drawn uniformly
between half and the whole of `min(ceiling, first * factor**n)`: 50 - 100 ms, 100 - 200 ms,
200 - 400 ms... up to 5 - 10 s with the defaults; the jitter keeps many clients that lost one
server from coming back in step. Trouble starts when a connection fails or drops, and ends when
the server answers a connection (`catch_up`, `subscribed`, `replay`) or an event arrives, which
also starts the waits from `first` again. After `give_up_after` seconds of trouble the watch
raises `ConnectionLost`; `None` retries for ever. The default, 5 minutes, rides out a server
restart or a deploy, and still tells a script whose server is gone for good.
"""

from __future__ import annotations

import math
import random
from typing import Any

import attrs


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name} must be a positive number of seconds, got {value!r}")


def _at_least_one(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(f"{attribute.name} must be 1 or more, got {value!r}")


def _budget(
    instance: object, attribute: attrs.Attribute[Any], value: float | None
) -> None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be 0 or more seconds, or None, got {value!r}")


@attrs.frozen
class Backoff:
    first: float = attrs.field(default=0.1, validator=_positive)
    ceiling: float = attrs.field(default=10.0, validator=_positive)
    factor: float = attrs.field(default=2.0, validator=_at_least_one)
    give_up_after: float | None = attrs.field(default=300.0, validator=_budget)

    def __attrs_post_init__(self) -> None:
        if self.ceiling < self.first:
            raise ValueError(f"ceiling ({self.ceiling}) must be at least first ({self.first})")

    def span(self, attempt: int) -> float:
        """The longest wait after failed attempt `attempt` (0: the first in a row)."""
        span = self.first
        for _ in range(attempt):
            if span >= self.ceiling:
                break
            span *= self.factor
        return min(span, self.ceiling)

    def delay(self, attempt: int, rng: random.Random) -> float:
        span = self.span(attempt)
        return span / 2 + rng.random() * span / 2


@attrs.define
class Retrying:
    """One watch's retries: `failed(now)` after a connection failed or dropped gives the wait
    before the next attempt, or None to give up; `answered()` when the server answers."""

    backoff: Backoff
    rng: random.Random = attrs.field(factory=random.Random)
    attempt: int = 0  # failed attempts in a row
    trouble_since: float | None = None

    def failed(self, now: float) -> float | None:
        if self.trouble_since is None:
            self.trouble_since = now
        budget = self.backoff.give_up_after
        left = math.inf if budget is None else self.trouble_since + budget - now
        if left <= 0:
            return None
        wait = self.backoff.delay(self.attempt, self.rng)
        self.attempt += 1
        return min(wait, left)

    def answered(self) -> None:
        self.attempt = 0
        self.trouble_since = None
