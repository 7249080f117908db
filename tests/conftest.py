"""Fixtures shared by every test: servers, databases and opened storages.

PostgreSQL and Redis come from ``HUBBUB_TEST_POSTGRES_URL`` / ``HUBBUB_TEST_REDIS_URL`` when
set, else from throwaway servers started for the session (never the machine's own servers
on their standard ports). Without the binaries the tests that need them are skipped, except
under ``CI=true``, where a missing server is a failure: CI must not pass by skipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from hubbub.storage import Storage, open_storage
from tests.helpers.redis_cluster import ExternalRedisCluster, RedisClusterServer
from tests.helpers.servers import PostgresServer, RedisServer, ServerError

POSTGRES_URL_ENV = "HUBBUB_TEST_POSTGRES_URL"
REDIS_URL_ENV = "HUBBUB_TEST_REDIS_URL"
#: A Redis Cluster the tests may use (and flush) instead of starting one of their own.
REDIS_CLUSTER_URL_ENV = "HUBBUB_TEST_REDIS_CLUSTER_URL"

_database_numbers = itertools.count()
_Server = TypeVar("_Server", PostgresServer, RedisServer, RedisClusterServer)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so this fails instead of skipping", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def _throwaway(create: Callable[[], _Server], what: str) -> Iterator[_Server]:
    """A started server from ``create()``, cleaned up on exit; skip (or fail) without one."""
    server = None
    try:
        server = create()
        server.start()
    except ServerError as exc:
        if server is not None:
            server.cleanup()
        _unavailable(f"no {what} for tests: {exc}")
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server's URL (its maintenance database), as a superuser."""
    if url := os.environ.get(POSTGRES_URL_ENV):
        yield url
        return
    with _throwaway(PostgresServer.create, "PostgreSQL") as server:
        yield server.url


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """A Redis server's URL, shared by the session: tests must use keys of their own."""
    if url := os.environ.get(REDIS_URL_ENV):
        yield url
        return
    with _throwaway(RedisServer.create, "Redis") as server:
        yield server.url


@pytest.fixture(scope="session")
def redis_cluster_session() -> Iterator[RedisClusterServer | ExternalRedisCluster]:
    """A 3-master Redis Cluster for the session: ``HUBBUB_TEST_REDIS_CLUSTER_URL``'s, or a
    throwaway one on loopback ports (``tests/helpers/redis_cluster.py``)."""
    if url := os.environ.get(REDIS_CLUSTER_URL_ENV):
        yield ExternalRedisCluster(url)
        return
    with _throwaway(RedisClusterServer.create, "Redis Cluster") as cluster:
        yield cluster


@pytest.fixture
def redis_cluster(
    redis_cluster_session: RedisClusterServer | ExternalRedisCluster,
) -> RedisClusterServer | ExternalRedisCluster:
    """The session's Redis Cluster, emptied for this test (it has ``url``, a
    ``redis+cluster://`` URL)."""
    redis_cluster_session.flush()
    return redis_cluster_session


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A started Redis server of the test's own: for tests that kill and restart it."""
    with _throwaway(RedisServer.create, "Redis") as server:
        yield server


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A started PostgreSQL server of the test's own: for tests that stop and start it."""
    with _throwaway(PostgresServer.create, "PostgreSQL") as server:
        yield server


def _admin(server_url: str, sql: str) -> None:
    """Run one statement on the server, synchronously (fixtures here are sync)."""

    async def run() -> None:
        conn = await asyncpg.connect(server_url, timeout=10)
        try:
            await conn.execute(sql, timeout=60)
        finally:
            await conn.close(timeout=10)

    # A loop of its own, closed after: the fixture runs outside any test's event loop.
    loop = asyncio.SelectorEventLoop()
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A new, empty database for this test alone, dropped afterwards."""
    name = f"hubbub_test_{os.getpid()}_{next(_database_numbers)}"
    _admin(postgres_server_url, f'CREATE DATABASE "{name}"')
    parts = urlsplit(postgres_server_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        # Best effort: a throwaway server goes away with its databases anyway.
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            _admin(postgres_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A database file of this test's own (not created yet)."""
    return f"sqlite:///{tmp_path / 'hubbub.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each backend in turn."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    """An opened, migrated storage of each backend in turn."""
    async with open_storage(database_url) as storage:
        await storage.migrate()
        yield storage
