"""How a node reaches the others: nothing (one node) or Redis (many nodes).

``open_cluster`` picks the bus, presence and rate limiter for the settings: in-process
ones without ``HUBBUB_REDIS_URL``; with it, the RedisBridge, Redis presence (heartbeats,
so a dead node's users expire) and a Redis rate limiter shared by every node. The
bridge's losses and resyncs are counted in the node's metrics
(``hubbub_bus_dropped_total``, ``hubbub_bus_resyncs_total{cause}``). With Redis each node
also beats in a registry of live nodes (``node_registry``), which ``live_nodes`` reads.
A ``redis+cluster://`` URL selects a Redis Cluster (``redis_client``): the same parts,
with sharded pub/sub and hash-tagged keys.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import trio

from hubbub.config import Settings
from hubbub.engine.chat.ports import Bus, Presence, RateLimiter
from hubbub.engine.cluster.local import InProcessRateLimiter, LocalBus, LocalPresence
from hubbub.engine.cluster.node_registry import NodeRegistry, local_entry
from hubbub.engine.cluster.redis_bus import RedisBridge
from hubbub.engine.cluster.redis_client import client_for_url
from hubbub.engine.cluster.redis_guard import REDIS_DOWN, RedisUnavailable
from hubbub.engine.cluster.redis_presence import RedisPresence
from hubbub.engine.cluster.redis_rate_limit import RedisRateLimiter
from hubbub.engine.runtime.supervisor import ChildSpec
from hubbub.engine.runtime.task_child import TaskChild
from hubbub.metrics import Metrics

log = logging.getLogger("hubbub")

CONNECT_TIMEOUT = 5.0


class ClusterUnavailable(Exception):
    """Redis did not answer at start-up."""


@attrs.define
class ClusterHooks:
    """What the cluster calls back into the node's chat service."""

    local_users: Callable[[], Iterable[int]]
    user_expired: Callable[[int], Awaitable[None]]
    #: ``resync(channels)``: events on these local channels (``None``: on any) may have
    #: been missed; fetch them from storage. The promise is in ``redis_bus``'s docstring.
    resync: Callable[[frozenset[str] | None], Awaitable[None]]


@attrs.define
class Cluster:
    node_id: str
    bus: Bus
    presence: Presence
    rate_limiter: RateLimiter
    #: Long-running parts to supervise (the bridge, presence heartbeats).
    children: list[ChildSpec]
    #: With Redis: the heartbeat registry of live nodes.
    registry: NodeRegistry | None = None
    started_at: float = attrs.Factory(time.time)
    _details: Callable[[], dict[str, Any]] = dict

    async def readiness(self) -> dict[str, bool]:
        """``{"redis": ...}`` when there is a Redis, else nothing to check."""
        if isinstance(self.bus, RedisBridge):
            return {"redis": await self.bus.ready()}
        return {}

    def describe(self, details: Callable[[], dict[str, Any]]) -> None:
        """What this node says of itself in ``live_nodes`` (its URL, connections): called
        once per heartbeat, so cheap and never raising."""
        self._details = details
        if self.registry is not None:
            self.registry.describe(details)

    async def live_nodes(self) -> list[dict[str, Any]] | None:
        """Every live node's entry (``node_id``, ``started_at``, what ``describe`` gave);
        a lone node lists itself. None if Redis does not answer."""
        if self.registry is None:
            return [local_entry(self.node_id, self._details(), self.started_at)]
        try:
            return await self.registry.live_nodes()
        except RedisUnavailable:
            return None


@asynccontextmanager
async def open_cluster(
    settings: Settings, hooks: ClusterHooks, metrics: Metrics | None = None
) -> AsyncIterator[Cluster]:
    node_id = secrets.token_hex(4)
    local = InProcessRateLimiter(
        {"direct": settings.direct_rate_limit, "group": settings.group_rate_limit},
        settings.rate_window,
    )
    if settings.redis_url is None:
        yield Cluster(node_id, LocalBus(), LocalPresence(), local, [])
        return
    client = client_for_url(settings.redis_url, connect_timeout=CONNECT_TIMEOUT)
    async with AsyncExitStack() as stack:
        try:
            # Entering a cluster client already connects (it maps the slots), bounded by
            # connect_timeout per node. Not under fail_after: the client keeps a task
            # group open from here, which must not sit inside a scope that closes first.
            await stack.enter_async_context(client)
            with trio.fail_after(CONNECT_TIMEOUT):
                await client.ping()
        except REDIS_DOWN as error:
            raise ClusterUnavailable(
                f"Redis at {settings.redis_url} did not answer: {error!r}"
            ) from None
        metrics = metrics if metrics is not None else Metrics()
        bridge = RedisBridge(
            client,
            node_id,
            on_resync=hooks.resync,
            on_dropped=metrics.bus_dropped.inc,
            on_resynced=lambda cause: metrics.bus_resyncs.labels(cause).inc(),
        )
        presence = RedisPresence(
            client, node_id, local_users=hooks.local_users, on_expired=hooks.user_expired
        )
        limiter = RedisRateLimiter(client, local.limits, settings.rate_window, fallback=local)
        registry = NodeRegistry(client, node_id)
        log.info("joining the cluster", extra={"fields": {"node": node_id}})
        yield Cluster(
            node_id,
            bridge,
            presence,
            limiter,
            [
                ChildSpec("redis-bridge", lambda: TaskChild("redis-bridge", bridge.run)),
                ChildSpec("presence", lambda: TaskChild("presence", presence.run)),
                ChildSpec("node-registry", lambda: TaskChild("node-registry", registry.run)),
            ],
            registry=registry,
            started_at=registry.started_at,
        )
