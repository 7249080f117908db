"""Which Redis a node talks to: one server (``redis://``) or a Redis Cluster
(``redis+cluster://host:port[,host:port...]``), and the key names that stay cluster-safe.

Both are ``coredis`` clients with the same commands; what differs is routing. In a
cluster every key lives in one of 16384 slots, and a script, a MULTI or a multi-key
command must touch keys of one slot only. A *hash tag* (the part of a key between ``{``
and ``}``) alone decides the slot, so keys that are used together share a tag. The same
names are used with one server, where the braces are just characters: one key layout,
one code path.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import coredis
from coredis.connection import TCPLocation

from hubbub.config import cluster_nodes, is_cluster_url

#: What a node's Redis client is: either kind has every command the cluster code uses.
RedisClient = coredis.Redis[bytes] | coredis.RedisCluster[bytes]


def client_for_url(url: str, *, connect_timeout: float) -> RedisClient:
    """A client (not connected yet; ``async with`` it) for a ``HUBBUB_REDIS_URL``, which
    ``hubbub.config.check_redis_url`` has accepted."""
    if not is_cluster_url(url):
        return coredis.Redis.from_url(url, decode_responses=False, connect_timeout=connect_timeout)
    parts = urlsplit(url)
    return coredis.RedisCluster(
        startup_nodes=[TCPLocation(host, port) for host, port in cluster_nodes(url)],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme.startswith("rediss"),
        connect_timeout=connect_timeout,
        decode_responses=False,
    )


def is_cluster(client: object) -> bool:
    """Whether ``client`` talks to a Redis Cluster (so pub/sub is sharded)."""
    return isinstance(client, coredis.RedisCluster)


def tagged(prefix: str, tag: str) -> str:
    """``<prefix>{<tag>}:``: a key prefix whose keys all hash to one slot."""
    return f"{prefix}{{{tag}}}:"
