"""Rate limits shared by every node: one sliding log per user and kind, in Redis.

One Lua script decides each send atomically, on Redis's own clock, so nodes can neither
race each other past the limit nor disagree about time. When Redis does not answer in
time, each node falls back to its in-process limiter: the limit then holds per node, not
per cluster, until Redis is back (a documented degradation, logged once per outage).

Checks are coalesced: the checks a node makes within one scheduler pass (the many sends
that arrive together under load) go to Redis as one pipeline of script calls, one round
trip instead of one each, and each caller gets the answer to its own check. The first
check of a pass *leads*: it yields once, so that the checks of the other tasks that run
in this pass join it, then sends them all. On a Redis Cluster the pipeline is split per
master by the keys' slots (coredis does that); each user's keys share the hash tag
``{<user id>}``, so a user's limits live on one master.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from typing import Any

import attrs
import trio
from coredis.exceptions import NoScriptError

from hubbub.engine.chat.ports import Kind, RateLimiter
from hubbub.engine.cluster.local import InProcessRateLimiter
from hubbub.engine.cluster.redis_client import RedisClient
from hubbub.engine.cluster.redis_guard import LUA_NOW_MS, RedisGuard, RedisUnavailable

log = logging.getLogger("hubbub.engine")

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


@attrs.define(eq=False)
class _Batch:
    """The checks of one scheduler pass: ``(key, args)`` each, answered together."""

    checks: list[tuple[str, list[Any]]] = attrs.Factory(list)
    #: One 1 (counted) or 0 per check; None if Redis did not answer.
    answers: list[Any] | None = None
    done: trio.Event = attrs.Factory(trio.Event)


class RedisRateLimiter(RateLimiter):
    """At most ``limits[kind]`` sends per user in any ``window`` seconds, across all nodes.

    Keys: ``<prefix>rate:{<user id>}:<kind>``, each expiring one window after its last send.
    """

    def __init__(
        self,
        client: RedisClient,
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
        self._client = client
        self._script = client.register_script(_ALLOW)
        # The batch the current scheduler pass's checks join, until its leader sends it.
        self._forming: _Batch | None = None
        self._loaded = False
        #: Round trips made and checks they carried, ever (how well checks coalesce).
        self.round_trips = 0
        self.checks = 0
        self._guard = RedisGuard("rate limits", timeout)
        # Log members must be unique across nodes, or two sends in one millisecond would
        # count once.
        self._member_prefix = secrets.token_hex(8) + ":"
        self._sequence = itertools.count()

    async def allow(self, user_id: int, kind: Kind) -> bool:
        """Count one send and say whether it is within the cluster-wide limit; a refused
        send is not counted. Returns within ``timeout``: past it, or with Redis down, the
        in-process fallback decides."""
        key = f"{self.prefix}rate:{{{user_id}}}:{kind}"
        member = self._member_prefix + str(next(self._sequence))
        was_down = self._guard.down
        batch, position = self._join((key, [self.limits[kind], self._window_ms, member]))
        if position == 0:
            await self._lead(batch)
        else:
            # The leader always sets it, within its guarded call's timeout.
            await batch.done.wait()
        if batch.answers is None:
            return self.fallback.allow_now(user_id, kind)
        if was_down:
            # Back from an outage: the fallback's logs are stale now, free them.
            self.fallback.forget_idle()
        return batch.answers[position] == 1

    def _join(self, check: tuple[str, list[Any]]) -> tuple[_Batch, int]:
        """Add ``check`` to this pass's batch (a new one if none is forming); its index."""
        batch = self._forming
        if batch is None:
            batch = self._forming = _Batch()
        batch.checks.append(check)
        return batch, len(batch.checks) - 1

    async def _lead(self, batch: _Batch) -> None:
        """Let the other checks of this pass join, then send them all and answer each."""
        try:
            # Shielded: yielding here must not be where the leader is cancelled, or its
            # batch would never be sent.
            await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._forming = None
        try:
            batch.answers = await self._guard.call(lambda: self._send(batch.checks))
        except RedisUnavailable:
            pass
        finally:
            # Also if the leader is cancelled: the others fall back rather than wait.
            batch.done.set()

    async def _send(self, checks: list[tuple[str, list[Any]]]) -> list[Any]:
        self.round_trips += 1
        self.checks += len(checks)
        if len(checks) == 1:
            key, args = checks[0]
            return [await self._script(keys=[key], args=args)]
        # EVALSHA by hand: a pipeline given Script objects asks SCRIPT EXISTS first, every
        # time, which is a second round trip.
        if not self._loaded:
            await self._client.script_load(_ALLOW)
            self._loaded = True
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                requests = [
                    pipe.evalsha(self._script.sha, keys=[key], args=args) for key, args in checks
                ]
        except NoScriptError:
            # A Redis restarted empty. Some checks may have run (on a cluster, on the other
            # masters), so none is retried: this batch falls back, the next reloads.
            self._loaded = False
            raise
        return [await request for request in requests]
