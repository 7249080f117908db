"""Multi-node fixtures: each test gets its own cluster (tests/helpers/cluster.py) on a
fresh PostgreSQL database and a Redis of its own, so a test may SIGKILL a node or the
Redis without harming another. ``async with cluster_factory(direct_rate_limit="5") as
cluster:`` tunes the settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from tests.helpers.cluster import Cluster, ClusterFactory, open_cluster
from tests.helpers.servers import RedisServer


@pytest.fixture
def cluster_factory(tmp_path: Path, postgres_url: str, redis_server: RedisServer) -> ClusterFactory:
    """``async with cluster_factory(direct_rate_limit="5") as cluster:``: a cluster with
    settings of the test's choosing."""

    def factory(**overrides: str) -> AbstractAsyncContextManager[Cluster]:
        return open_cluster(tmp_path, postgres_url, redis_server, **overrides)

    return factory


@pytest.fixture
async def cluster(cluster_factory: ClusterFactory) -> AsyncIterator[Cluster]:
    """Three nodes with the default settings."""
    async with cluster_factory() as running:
        yield running
