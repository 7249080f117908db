"""Presence shared by every node, in Redis, with heartbeats so a dead node's users expire.

Each node *claims* the users it holds sessions for; a claim lapses unless the node
refreshes it within ``ttl``. A user is online while any claim of theirs is unexpired.

Keys (all under ``prefix``). Users fall in ``buckets`` by id (``b = user id mod
buckets``); each bucket's keys share the hash tag ``{presence:<b>}``, so on a Redis Cluster
every script below, which touches a bucket's ``online`` with its users' claim sets, stays
in one slot, while the buckets spread over the masters. One bucket on a single Redis
(``CLUSTER_BUCKETS`` on a cluster):

- ``{presence:<b>}:user:<user id>``: a sorted set of node ids scored by claim expiry (ms,
  Redis clock); it expires with its latest claim.
- ``{presence:<b>}:online``: a sorted set of the bucket's user ids scored by their latest
  claim's expiry, so lapsed users are found with one range query per bucket.

Every write goes through one Lua function, ``settle``, which drops lapsed claims and keeps
``online`` in step; removing a user from ``online`` is *the* offline transition, and only
the one script that does it hears 1. So every online period ends exactly once: either a
``went_offline`` that returns True, or one ``on_expired`` call on one node. Scripts read
Redis's ``TIME``, so the nodes' clocks never matter.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from functools import partial
from typing import Any

import trio

from hubbub.engine.chat.ports import Presence
from hubbub.engine.cluster.redis_client import RedisClient, is_cluster, tagged
from hubbub.engine.cluster.redis_guard import LUA_NOW_MS, RedisGuard, RedisUnavailable, jittered

log = logging.getLogger("hubbub.engine")

#: Users per heartbeat script call, and lapsed users expired per sweep round: bounds how
#: long one script keeps Redis busy.
BATCH = 500
#: Presence buckets on a Redis Cluster: enough to spread over a few dozen masters, few
#: enough that reading them all (``online_users``, the sweep) stays one small pipeline.
CLUSTER_BUCKETS = 16


def presence_keys(prefix: str, buckets: int, user_id: int) -> tuple[str, str]:
    """``(online, claims)``: the keys of ``user_id``'s bucket and of their claims."""
    tag = tagged(prefix, f"presence:{user_id % buckets}")
    return f"{tag}online", f"{tag}user:{user_id}"


# settle(): drop the user's lapsed claims; then either mirror their latest claim in
# `online`, or remove them from it. 1 only to the call that removed them (went offline).
_SETTLE = (
    LUA_NOW_MS
    + """
local function settle(claims, online, user, now)
  redis.call('ZREMRANGEBYSCORE', claims, '-inf', now)
  local latest = redis.call('ZRANGE', claims, -1, -1, 'WITHSCORES')
  if latest[1] == nil then
    return redis.call('ZREM', online, user)
  end
  redis.call('ZADD', online, latest[2], user)
  redis.call('PEXPIREAT', claims, latest[2])
  return 0
end
"""
)

# KEYS[1] online, KEYS[2..] the users' claim sets; ARGV[1] node, ARGV[2] ttl in ms,
# ARGV[3..] the users in KEYS' order. Claims (or re-claims) each user for ttl; returns
# how many of them had no live claim before (were offline everywhere).
_CLAIM = (
    _SETTLE
    + """
local now = now_ms()
local expiry = now + tonumber(ARGV[2])
local fresh = 0
for i = 2, #KEYS do
  if redis.call('ZCOUNT', KEYS[i], '(' .. now, '+inf') == 0 then
    fresh = fresh + 1
  end
  redis.call('ZADD', KEYS[i], expiry, ARGV[1])
  settle(KEYS[i], KEYS[1], ARGV[i + 1], now)
end
return fresh
"""
)

# KEYS[1] online, KEYS[2] the user's claims; ARGV[1] node, ARGV[2] user. 1: now offline.
_LEAVE = (
    _SETTLE
    + """
redis.call('ZREM', KEYS[2], ARGV[1])
return settle(KEYS[2], KEYS[1], ARGV[2], now_ms())
"""
)

# KEYS[1] online, KEYS[2] the user's claims; ARGV[1] user. 1: this call expired them.
_EXPIRE = (
    _SETTLE
    + """
return settle(KEYS[2], KEYS[1], ARGV[1], now_ms())
"""
)

# KEYS: claim sets. One 1/0 per key: has an unexpired claim.
_ANY_CLAIM = (
    LUA_NOW_MS
    + """
local since = '(' .. now_ms()
local found = {}
for i = 1, #KEYS do
  found[i] = redis.call('ZCOUNT', KEYS[i], since, '+inf') > 0 and 1 or 0
end
return found
"""
)

# KEYS[1] online. Users with an unexpired claim.
_ONLINE = (
    LUA_NOW_MS
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now_ms(), '+inf')
"""
)

# KEYS[1] online; ARGV[1] how many. Users whose every claim has lapsed (still listed).
_LAPSED = (
    LUA_NOW_MS
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, ARGV[1])
"""
)


class RedisPresence(Presence):
    """``Presence`` for a cluster of nodes sharing one Redis. Run ``run()`` under a supervisor.

    ``local_users()`` must list the users with a session on this node: a user from before
    ``went_online`` is awaited for them, and no longer once ``went_offline`` is called.

    While Redis is unreachable (or slower than ``timeout``), every call returns within
    ``timeout`` without raising and the node answers from its own knowledge, as a lone node
    would: ``is_online`` and friends consult ``local_users()``; ``went_offline`` returns
    True (its offline announcement cannot wait for Redis) and this node's claim is removed
    by the first heartbeat that reaches Redis again; that heartbeat also re-claims every
    local user, so a Redis that restarted empty is repopulated within one ``heartbeat``.
    """

    def __init__(
        self,
        client: RedisClient,
        node_id: str,
        *,
        local_users: Callable[[], Iterable[int]],
        on_expired: Callable[[int], Awaitable[None]],
        prefix: str = "hubbub:",
        ttl: float = 15.0,
        heartbeat: float = 5.0,
        timeout: float = 1.0,
        buckets: int | None = None,
    ) -> None:
        if ttl <= heartbeat + timeout:
            raise ValueError(
                f"presence ttl ({ttl} s) must exceed heartbeat + timeout "
                f"({heartbeat} + {timeout} s), or live nodes' claims lapse between beats"
            )
        self.client = client
        self.node_id = node_id
        self.prefix = prefix
        self.ttl = ttl
        self.heartbeat = heartbeat
        self._local_users = local_users
        self._on_expired = on_expired
        self._ttl_ms = round(ttl * 1000)
        #: Every node of a cluster must use the same number (it is in the key names).
        self.buckets = buckets or (CLUSTER_BUCKETS if is_cluster(client) else 1)
        self._guard = RedisGuard("presence", timeout)
        # Serialises this node's claim writes, so a heartbeat that read local_users()
        # just before a user left cannot re-claim them after their went_offline.
        self._writing = trio.Lock()
        # Users whose went_offline did not reach Redis: the next heartbeat removes the claim.
        self._leaving: set[int] = set()
        self._claim = client.register_script(_CLAIM)
        self._leave = client.register_script(_LEAVE)
        self._expire = client.register_script(_EXPIRE)
        self._any_claim = client.register_script(_ANY_CLAIM)
        self._online = client.register_script(_ONLINE)
        self._lapsed = client.register_script(_LAPSED)

    def _claims_key(self, user_id: int) -> str:
        return presence_keys(self.prefix, self.buckets, user_id)[1]

    def _online_key(self, bucket: int) -> str:
        return presence_keys(self.prefix, self.buckets, bucket)[0]

    def _user_keys(self, user_id: int) -> list[str]:
        return list(presence_keys(self.prefix, self.buckets, user_id))

    def _by_bucket(self, users: Iterable[int]) -> dict[int, list[int]]:
        grouped: dict[int, list[int]] = {}
        for user in users:
            grouped.setdefault(user % self.buckets, []).append(user)
        return grouped

    def _leave_request(self, user_id: int, pipe: Any = None) -> Any:
        """The leave script for this node's claim on ``user_id``, on ``pipe`` if given."""
        keys = self._user_keys(user_id)
        return self._leave(keys=keys, args=[self.node_id, user_id], client=pipe)

    # -- Presence --------------------------------------------------------------

    async def went_online(self, user_id: int) -> bool:
        """Claim the user for this node; True if no other node held them (they were
        offline everywhere). With Redis away, logs (once) and returns True, as a lone node
        would: the next heartbeat that reaches Redis claims them."""
        self._leaving.discard(user_id)

        async def claim() -> Any:
            async with self._writing:
                return await self._claim(
                    keys=self._user_keys(user_id),
                    args=[self.node_id, self._ttl_ms, user_id],
                )

        try:
            return bool(await self._guard.call(claim))
        except RedisUnavailable:
            return True

    async def went_offline(self, user_id: int) -> bool:
        """Drop this node's claim. True if that took the user offline everywhere (then
        no ``on_expired`` will follow for this online period); True as well if Redis is
        away, as a lone node would say."""

        async def leave() -> Any:
            async with self._writing:
                return await self._leave_request(user_id)

        try:
            return await self._guard.call(leave) == 1
        except RedisUnavailable:
            self._leaving.add(user_id)
            return True

    async def is_online(self, user_id: int) -> bool:
        return user_id in await self.online_among((user_id,))

    async def online_among(self, user_ids: Collection[int]) -> set[int]:
        """Which of ``user_ids`` are online anywhere, in one round trip. With Redis away:
        which of them have a session on this node."""
        users = list(user_ids)
        if not users:
            return set()
        groups = list(self._by_bucket(users).values())

        async def ask() -> list[int]:
            if len(groups) == 1:
                return list(await self._any_claim(keys=list(map(self._claims_key, groups[0]))))
            async with self.client.pipeline(transaction=False) as pipe:
                requests: list[Any] = [
                    self._any_claim(keys=list(map(self._claims_key, group)), client=pipe)
                    for group in groups
                ]
            return [claimed for request in requests for claimed in await request]

        try:
            found = await self._guard.call(ask)
        except RedisUnavailable:
            return set(users) & set(self._local_users())
        asked = [user for group in groups for user in group]
        return {user for user, claimed in zip(asked, found, strict=True) if claimed}

    async def online_users(self) -> list[int]:
        """Every user online anywhere, ascending. With Redis away: this node's users."""

        async def ask() -> list[bytes]:
            if self.buckets == 1:
                return list(await self._online(keys=[self._online_key(0)]))
            async with self.client.pipeline(transaction=False) as pipe:
                requests: list[Any] = [
                    self._online(keys=[self._online_key(bucket)], client=pipe)
                    for bucket in range(self.buckets)
                ]
            return [member for request in requests for member in await request]

        try:
            members = await self._guard.call(ask)
        except RedisUnavailable:
            return sorted(set(self._local_users()))
        return sorted(int(member) for member in members)

    # -- the long-running part ---------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Heartbeat and sweep until cancelled; Redis being away never makes it raise.

        Every ``heartbeat`` seconds it re-claims every local user (and retires claims
        that went_offline could not). Every ``heartbeat`` seconds too it sweeps: users
        whose every claim lapsed are expired, each by exactly one node of the cluster,
        which awaits ``on_expired(user_id)``. A dead node's users thus expire within
        ``ttl + heartbeat`` of its last heartbeat.
        """
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._heartbeat_loop)
            nursery.start_soon(self._sweep_loop)
            task_status.started()

    async def _heartbeat_loop(self) -> None:
        # No back-off past the interval: a late heartbeat lets other nodes expire this
        # node's users, and a failing attempt costs at most ``timeout`` anyway. No jitter
        # either: an outage does not line the nodes' beats up (none of them waits for
        # Redis to come back), so they stay as spread as the nodes' start times.
        while True:
            with contextlib.suppress(RedisUnavailable):
                await self._guard.call(self._beat)
            await trio.sleep(self.heartbeat)

    async def _beat(self) -> None:
        async with self._writing:
            local = set(self._local_users())
            leaving = self._leaving - local
            claims = sorted(local)
            async with self.client.pipeline(transaction=False) as pipe:
                # Even a node without users must probe Redis, or it would never see an
                # outage end, and sweep() would stay shut. A keyed probe, not PING: a
                # cluster pipeline routes each command by its key's slot.
                pipe.exists([self._online_key(0)])
                for user in leaving:
                    self._leave_request(user, pipe)
                for bucket, users in self._by_bucket(claims).items():
                    for start in range(0, len(users), BATCH):
                        chunk = users[start : start + BATCH]
                        self._claim(
                            keys=[self._online_key(bucket), *map(self._claims_key, chunk)],
                            args=[self.node_id, self._ttl_ms, *chunk],
                            client=pipe,
                        )
            self._leaving -= leaving

    async def _sweep_loop(self) -> None:
        backoff = delay = self.heartbeat
        while True:
            await trio.sleep(delay)
            try:
                await self.sweep()
            except RedisUnavailable:
                # Late sweeps harm no one. Jittered: the nodes all failed at the same
                # outage, and must not all retry at the same instants.
                backoff = min(backoff * 2, self.ttl)
                delay = jittered(backoff)
            else:
                backoff = delay = self.heartbeat

    async def sweep(self) -> list[int]:
        """Expire every user whose claims all lapsed, and await ``on_expired`` for each
        one this node won (of all the nodes sweeping, exactly one wins each user).
        Returns those users. ``run()`` calls it; raises ``RedisUnavailable``.

        While this node's Redis calls fail, and for ``heartbeat + timeout`` after they
        succeed again, it expires no one: Redis's clock ran on while nobody could refresh a
        claim, so every live node first gets one heartbeat (and one timed-out attempt) to
        re-claim its users. This assumes every node runs with the same timings.
        """
        if not self._guard.healthy_for(self.heartbeat + self._guard.timeout):
            return []
        expired: list[int] = []
        for bucket in range(self.buckets):
            while True:
                lapsed: list[bytes] = await self._guard.call(
                    partial(self._lapsed, keys=[self._online_key(bucket)], args=[BATCH])
                )
                users = [int(member) for member in lapsed]
                won = await self._guard.call(partial(self._expire_all, users)) if users else []
                for user in won:
                    await self._notify(user)
                expired += won
                if len(users) < BATCH:
                    break
        return expired

    async def _expire_all(self, users: Sequence[int]) -> list[int]:
        async with self.client.pipeline(transaction=False) as pipe:
            results: list[Any] = [
                self._expire(keys=self._user_keys(user), args=[user], client=pipe) for user in users
            ]
        return [user for user, result in zip(users, results, strict=True) if await result == 1]

    async def _notify(self, user_id: int) -> None:
        try:
            await self._on_expired(user_id)
        except Exception:
            # The user is already out of `online`; one failed announcement must not stop
            # the sweep for everyone else.
            log.exception("on_expired failed", extra={"fields": {"user_id": user_id}})
