"""Per-user message rate limits: at most ``limit`` sends in any ``window`` seconds.

``InProcessRateLimiter`` serves one node; a Redis implementation of the same interface
shares the limit across nodes.
"""

from __future__ import annotations

import abc
from collections import deque
from collections.abc import Callable
from typing import Literal

import trio

Kind = Literal["direct", "group"]


class RateLimiter(abc.ABC):
    @abc.abstractmethod
    async def allow(self, user_id: int, kind: Kind) -> bool:
        """Count one send of ``kind`` by ``user_id`` and say whether it is within the limit.
        A refused send is not counted."""


class InProcessRateLimiter(RateLimiter):
    """A sliding log per user and kind: exact, and memory bounded by the limit."""

    def __init__(
        self,
        limits: dict[Kind, int],
        window: float,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.limits = limits
        self.window = window
        self._clock = clock
        self._logs: dict[tuple[int, Kind], deque[float]] = {}

    def allow_now(self, user_id: int, kind: Kind) -> bool:
        now = self._clock()
        key = (user_id, kind)
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = deque()
        horizon = now - self.window
        while log and log[0] <= horizon:
            log.popleft()
        if len(log) >= self.limits[kind]:
            return False
        log.append(now)
        return True

    async def allow(self, user_id: int, kind: Kind) -> bool:
        return self.allow_now(user_id, kind)

    def forget_idle(self) -> None:
        """Drop logs whose entries have all expired, so memory follows active users."""
        horizon = self._clock() - self.window
        for key in [key for key, log in self._logs.items() if not log or log[-1] <= horizon]:
            del self._logs[key]
