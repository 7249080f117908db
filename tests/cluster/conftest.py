"""Multi-node fixtures: each test gets its own cluster (tests/helpers/cluster.py) on a
fresh PostgreSQL database and a Redis of its own, so a test may SIGKILL a node or the
Redis without harming another. ``async with cluster_factory(direct_rate_limit="5") as
cluster:`` tunes the settings.

Tests marked ``redis_cluster`` run twice: on one Redis server, and on the session's
3-master Redis Cluster (emptied before each test; ``HUBBUB_TEST_REDIS_CLUSTER_URL`` or a
throwaway one), through a ``redis+cluster://`` URL. Only a representative subset is
marked: the whole matrix would double a suite that already takes long on small machines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from tests.helpers.cluster import Cluster, ClusterFactory, open_cluster

#: The Redis a multi-node test runs on: one server, or a Redis Cluster.
REDIS_KINDS = ("redis", "redis-cluster")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "redis_kind" in metafunc.fixturenames:
        marked = metafunc.definition.get_closest_marker("redis_cluster") is not None
        metafunc.parametrize("redis_kind", REDIS_KINDS if marked else REDIS_KINDS[:1])


@pytest.fixture
def cluster_redis(request: pytest.FixtureRequest, redis_kind: str) -> object:
    """The Redis the nodes share: a server of the test's own (it may kill it), or the
    session's Redis Cluster, emptied."""
    if redis_kind == "redis-cluster":
        return request.getfixturevalue("redis_cluster")
    return request.getfixturevalue("redis_server")


@pytest.fixture
def cluster_factory(tmp_path: Path, postgres_url: str, cluster_redis: object) -> ClusterFactory:
    """``async with cluster_factory(direct_rate_limit="5") as cluster:``: a cluster with
    settings of the test's choosing."""

    def factory(**overrides: str) -> AbstractAsyncContextManager[Cluster]:
        return open_cluster(tmp_path, postgres_url, cluster_redis, **overrides)

    return factory


@pytest.fixture
async def cluster(cluster_factory: ClusterFactory) -> AsyncIterator[Cluster]:
    """Three nodes with the default settings."""
    async with cluster_factory() as running:
        yield running
