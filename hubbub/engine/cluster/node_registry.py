"""Which nodes are alive: each node's heartbeat in Redis, read by the operator page.

Keys (under ``prefix``, both behind the hash tag ``{nodes}``, so that on a Redis Cluster
the scripts that touch both find them in one slot):

- ``{nodes}``: a sorted set of node ids scored by heartbeat expiry (ms, Redis clock);
- ``{nodes}:info``: a hash of node id to what the node says of itself (JSON: its URL,
  connections, when it started), written with each beat.

A node is live while its entry is unexpired: one that stops beating (crashed, cut off)
drops out within ``ttl``; one that stops cleanly removes itself at once. Reads drop the
lapsed entries of both keys, so a dead node leaves nothing behind. Scripts read Redis's
``TIME``, so the nodes' clocks never matter.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import orjson
import trio

from hubbub.engine.cluster.redis_client import RedisClient
from hubbub.engine.cluster.redis_guard import LUA_NOW_MS, RedisGuard, RedisUnavailable

# KEYS[1] nodes, KEYS[2] nodes:info; ARGV[1] node, ARGV[2] ttl ms, ARGV[3] info JSON.
_BEAT = (
    LUA_NOW_MS
    + """
redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""
)

# KEYS[1] nodes, KEYS[2] nodes:info. Drops lapsed nodes; returns {id, expiry, info, ...}.
_LIVE = (
    LUA_NOW_MS
    + """
local now = now_ms()
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, node in ipairs(lapsed) do
  redis.call('HDEL', KEYS[2], node)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local found = {}
local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #live, 2 do
  found[#found + 1] = live[i]
  found[#found + 1] = tostring(tonumber(live[i + 1]) - now)
  found[#found + 1] = redis.call('HGET', KEYS[2], live[i]) or '{}'
end
return found
"""
)

# KEYS[1] nodes, KEYS[2] nodes:info; ARGV[1] node.
_LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""


def local_entry(node_id: str, details: dict[str, Any], started_at: float) -> dict[str, Any]:
    """What a node says of itself: the entry ``live_nodes`` lists for it."""
    return {"node_id": node_id, "started_at": started_at, **details}


class NodeRegistry:
    """This node's heartbeat, and the list of every live node. Run ``run()`` supervised.

    ``describe(details)`` gives what to publish besides the id (the node's URL, its
    connection count): ``details()`` is called once per beat, so it is cheap, synchronous
    and never raises. The first beat waits (up to one ``heartbeat``) for it, so a node is
    never listed without its URL for a whole beat."""

    def __init__(
        self,
        client: RedisClient,
        node_id: str,
        *,
        prefix: str = "hubbub:",
        ttl: float = 15.0,
        heartbeat: float = 5.0,
        timeout: float = 1.0,
    ) -> None:
        if ttl <= heartbeat + timeout:
            raise ValueError(f"node ttl ({ttl} s) must exceed heartbeat + timeout")
        self.client = client
        self.node_id = node_id
        self.heartbeat = heartbeat
        self.details: Callable[[], dict[str, Any]] = dict
        self._described = trio.Event()
        self.started_at = time.time()
        self._ttl_ms = round(ttl * 1000)
        self._keys = [f"{prefix}{{nodes}}", f"{prefix}{{nodes}}:info"]
        self._guard = RedisGuard("node registry", timeout)
        self._beat = client.register_script(_BEAT)
        self._live = client.register_script(_LIVE)
        self._leave = client.register_script(_LEAVE)

    def describe(self, details: Callable[[], dict[str, Any]]) -> None:
        self.details = details
        self._described.set()

    def entry(self) -> dict[str, Any]:
        """This node's own entry, as it publishes it."""
        return local_entry(self.node_id, self.details(), self.started_at)

    async def beat(self) -> None:
        """Publish this node's entry for ``ttl``. Raises ``RedisUnavailable``."""
        info = orjson.dumps(self.entry()).decode()
        await self._guard.call(
            lambda: self._beat(keys=self._keys, args=[self.node_id, self._ttl_ms, info])
        )

    async def live_nodes(self) -> list[dict[str, Any]]:
        """Every node whose heartbeat is unexpired, by id, each with ``expires_in`` (s).
        Raises ``RedisUnavailable``."""
        found: list[bytes] = await self._guard.call(lambda: self._live(keys=self._keys))
        nodes = []
        for start in range(0, len(found), 3):
            node_id, expires_ms, info = found[start : start + 3]
            try:
                entry = orjson.loads(info)
            except orjson.JSONDecodeError:
                entry = {}
            if not isinstance(entry, dict):
                entry = {}
            entry["node_id"] = node_id.decode()
            entry["expires_in"] = int(expires_ms) / 1000
            nodes.append(entry)
        return nodes

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Beat every ``heartbeat`` seconds until cancelled, then leave the set (bounded
        by the timeout). Redis being away never makes it raise: the next beat retries."""
        task_status.started()
        with trio.move_on_after(self.heartbeat):
            await self._described.wait()
        try:
            while True:
                with contextlib.suppress(RedisUnavailable):
                    await self.beat()
                await trio.sleep(self.heartbeat)
        finally:
            with trio.CancelScope(shield=True), contextlib.suppress(RedisUnavailable):
                await self._guard.call(lambda: self._leave(keys=self._keys, args=[self.node_id]))
