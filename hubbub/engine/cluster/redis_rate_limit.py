"""Rate limits shared by every node: one sliding log per user and kind, in Redis.

One Lua script decides each send atomically, on Redis's own clock, so nodes can neither
race each other past the limit nor disagree about time. When Redis does not answer in
time, each node falls back to its in-process limiter: the limit then holds per node, not
per cluster, until Redis is back (a documented degradation, logged once per outage).
"""

from __future__ import annotations

import itertools
import logging
import secrets
from typing import TypeVar

import coredis

from hubbub.engine.chat.ports import Kind, RateLimiter
from hubbub.engine.cluster.local import InProcessRateLimiter
from hubbub.engine.cluster.redis_guard import LUA_NOW_MS, RedisGuard, RedisUnavailable

log = logging.getLogger("hubbub.engine")

T = TypeVar("T")

# KEYS[1] the log (a sorted set, member = one send, score = its time in ms).
# ARGV: limit, window in ms, a member unique to this send. Returns 1 if counted, else 0.
_ALLOW = (
    LUA_NOW_MS
    + """
local now = now_ms()
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 1
"""
)


class RedisRateLimiter(RateLimiter):
    """At most ``limits[kind]`` sends per user in any ``window`` seconds, across all nodes.

    Keys: ``<prefix>rate:<kind>:<user id>``, each expiring one window after its last send.
    """

    def __init__(
        self,
        client: coredis.Redis,
        limits: dict[Kind, int],
        window: float,
        *,
        prefix: str = "hubbub:",
        fallback: InProcessRateLimiter | None = None,
        timeout: float = 1.0,
    ) -> None:
        self.limits = limits
        self.window = window
        self.prefix = prefix
        self.fallback = fallback if fallback is not None else InProcessRateLimiter(limits, window)
        self._window_ms = max(1, round(window * 1000))
        self._script = client.register_script(_ALLOW)
        self._guard = RedisGuard("rate limits", timeout)
        # Log members must be unique across nodes, or two sends in one millisecond would
        # count once.
        self._member_prefix = secrets.token_hex(8) + ":"
        self._sequence = itertools.count()

    async def allow(self, user_id: int, kind: Kind) -> bool:
        """Count one send and say whether it is within the cluster-wide limit; a refused
        send is not counted. Returns within ``timeout``: past it, or with Redis down, the
        in-process fallback decides."""
        key = f"{self.prefix}rate:{kind}:{user_id}"
        member = self._member_prefix + str(next(self._sequence))
        was_down = self._guard.down
        try:
            counted: int = await self._guard.call(
                lambda: self._script(keys=[key], args=[self.limits[kind], self._window_ms, member])
            )
        except RedisUnavailable:
            return self.fallback.allow_now(user_id, kind)
        if was_down:
            # Back from an outage: the fallback's logs are stale now, free them.
            self.fallback.forget_idle()
        return counted == 1
