"""What every Redis-backed part shares: what an outage looks like, the deadline policy, and
how long to wait before trying again.

``RedisGuard`` runs a call under a deadline and turns every failure into
``RedisUnavailable``, logging the start and end of an outage once each. ``jittered``
spreads retry delays, so nodes that saw the same outage do not retry in lockstep.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import coredis
import trio

log = logging.getLogger("hubbub.engine")

T = TypeVar("T")

#: What a Redis outage looks like from here.
REDIS_DOWN = (coredis.exceptions.RedisError, OSError, trio.TooSlowError, TimeoutError)

#: ``now_ms()``: Redis's clock in whole milliseconds. Milliseconds, not microseconds,
#: because Lua 5.1 prints numbers with 14 significant digits when it passes them on.
LUA_NOW_MS = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""


def jittered(delay: float, rng: random.Random | None = None) -> float:
    """A random delay in ``[delay / 2, delay]``: a back-off's step, spread.

    Every node sees a Redis restart at the same moment; with the same back-off sequence
    they would all reconnect (and resubscribe, and resync) at the same instants. Keeping
    at least half the delay keeps the back-off's intent (no hot retry loop)."""
    uniform = rng.uniform if rng is not None else random.uniform
    return delay * uniform(0.5, 1.0)


class RedisUnavailable(Exception):
    """Redis did not answer within the deadline, or answered with an error."""


class RedisGuard:
    """Runs Redis calls under a deadline, turning every failure into ``RedisUnavailable``.

    It logs a warning when an outage starts and an info line when Redis answers again,
    never once per call, so a node under load does not flood its log during an outage.
    """

    def __init__(self, what: str, timeout: float) -> None:
        self.what = what
        self.timeout = timeout
        self.down = False
        #: ``trio.current_time()`` of the first success after the last outage.
        self.up_since = -math.inf

    async def call(self, request: Callable[[], Awaitable[T]]) -> T:
        """``await request()``, or raise ``RedisUnavailable`` past ``timeout`` or on error."""
        failure = f"no answer within {self.timeout} s"
        with trio.move_on_after(self.timeout):
            try:
                result = await request()
            except REDIS_DOWN as error:
                failure = repr(error)
            else:
                self._answered()
                return result
        self._failed(failure)
        raise RedisUnavailable(f"Redis for {self.what}: {failure}")

    def healthy_for(self, seconds: float) -> bool:
        """True if every call of the last ``seconds`` succeeded (or none failed yet)."""
        return not self.down and trio.current_time() - self.up_since >= seconds

    def _answered(self) -> None:
        if self.down:
            self.down = False
            self.up_since = trio.current_time()
            log.info("redis answers again", extra={"fields": {"for": self.what}})

    def _failed(self, failure: str) -> None:
        if not self.down:
            self.down = True
            log.warning(
                "redis unavailable, degrading until it answers",
                extra={"fields": {"for": self.what, "error": failure}},
            )
