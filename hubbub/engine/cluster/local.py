"""One node alone: the in-process bus, presence and rate limiter."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection

import trio

from hubbub.engine.chat.ports import Bus, Event, Kind, Presence, RateLimiter, Subscriber


class LocalBus(Bus):
    """In-process delivery for a single node."""

    def __init__(self) -> None:
        self._subscribers: dict[str, Subscriber] = {}

    async def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        self._subscribers[channel] = subscriber

    def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        # ==, not is: a bound method is a new object at each access.
        if self._subscribers.get(channel) == subscriber:
            del self._subscribers[channel]

    def publish(self, channel: str, event: Event) -> None:
        subscriber = self._subscribers.get(channel)
        if subscriber is not None:
            subscriber(event)

    def channels(self) -> list[str]:
        return list(self._subscribers)


class LocalPresence(Presence):
    def __init__(self) -> None:
        self._online: set[int] = set()

    async def went_online(self, user_id: int) -> bool:
        fresh = user_id not in self._online
        self._online.add(user_id)
        return fresh

    async def went_offline(self, user_id: int) -> bool:
        self._online.discard(user_id)
        return True

    async def is_online(self, user_id: int) -> bool:
        return user_id in self._online

    def is_online_now(self, user_id: int) -> bool:
        return user_id in self._online

    async def online_among(self, user_ids: Collection[int]) -> set[int]:
        return self._online.intersection(user_ids)

    async def online_users(self) -> list[int]:
        return sorted(self._online)


class InProcessRateLimiter(RateLimiter):
    """A sliding log per user and kind: exact, each log bounded by its limit, and the logs
    together bounded by the users active in the last window.

    No task of its own: every call counts towards the next sweep of idle logs, which comes
    once there have been as many calls as there were logs after the previous sweep (and
    at least ``sweep_every``). A sweep costs one pass over the logs, so each call pays
    O(1) amortised; and since at most that many logs were added since, the logs never
    exceed twice the (user, kind) pairs active at the last sweep, plus ``sweep_every``.
    """

    def __init__(
        self,
        limits: dict[Kind, int],
        window: float,
        clock: Callable[[], float] = trio.current_time,
        *,
        sweep_every: int = 1024,
    ) -> None:
        self.limits = limits
        self.window = window
        self._clock = clock
        self._logs: dict[tuple[int, Kind], deque[float]] = {}
        self._sweep_every = sweep_every
        self._calls_to_sweep = sweep_every

    def __len__(self) -> int:
        """How many (user, kind) logs are kept."""
        return len(self._logs)

    def allow_now(self, user_id: int, kind: Kind) -> bool:
        now = self._clock()
        self._calls_to_sweep -= 1
        if self._calls_to_sweep <= 0:
            self.forget_idle()
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
        self._calls_to_sweep = max(self._sweep_every, len(self._logs))
