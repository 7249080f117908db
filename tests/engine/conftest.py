"""Fixtures for the engine's Redis-backed parts: a client, and a key prefix per test.

``redis_url`` (and ``client``, on it) is each kind of Redis in turn: the session's Redis
server, and the session's 3-master Redis Cluster (a ``redis+cluster://`` URL), so that
every script, pipeline and pub/sub path is also checked for cross-slot mistakes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from hubbub.engine.cluster.redis_client import RedisClient, client_for_url


@pytest.fixture
def prefix() -> str:
    """Keys of this test's own on the shared test Redis."""
    return f"test:{uuid.uuid4().hex}:"


@pytest.fixture(params=["redis", "redis-cluster"])
def redis_url(request: pytest.FixtureRequest) -> str:
    """A Redis server's URL, then a Redis Cluster's."""
    if request.param == "redis-cluster":
        return request.getfixturevalue("redis_cluster").url
    return request.getfixturevalue("redis_server_url")


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[RedisClient]:
    async with client_for_url(redis_url, connect_timeout=5) as client:
        yield client
