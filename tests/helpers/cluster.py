"""Three ``python -m hubbub serve`` subprocesses sharing one PostgreSQL database and one
Redis, with a common JWT secret (the fixtures are in tests/cluster/conftest.py).

The nodes are subprocesses because that is the only honest way to crash one.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from hubbub.client import Account, ChatClient, HubbubHTTP
from tests.helpers.chat import attached
from tests.helpers.nodes import NodeProcess, node_process
from tests.helpers.users import register

NODES = 3
#: Far above what any test sends, unless a test asks for a limit (the burst must not hit it).
DEFAULT_SETTINGS = {"direct_rate_limit": "1000000", "group_rate_limit": "1000000"}

ClusterFactory = Callable[..., AbstractAsyncContextManager["Cluster"]]


@attrs.define
class Cluster:
    """Three running nodes (``nodes[0]`` is "A", then "B", "C"), their Redis and database.

    ``nodes`` is current: ``restart`` replaces an entry (the node comes back on a new port).
    """

    tmp_path: Path
    database_url: str
    #: A ``RedisServer`` (``kill``, ``start``) or a Redis Cluster (``url`` only).
    redis: Any
    settings: dict[str, str]
    _nursery: trio.Nursery
    nodes: list[NodeProcess | None] = attrs.Factory(lambda: [None] * NODES)
    _holders: list[trio.CancelScope | None] = attrs.Factory(lambda: [None] * NODES)
    _http: dict[str, HubbubHTTP] = attrs.Factory(dict)

    def node(self, index: int) -> NodeProcess:
        node = self.nodes[index]
        assert node is not None, f"node {index} is not running"
        return node

    def url(self, index: int) -> str:
        return self.node(index).url

    def http(self, index: int) -> HubbubHTTP:
        """An HTTP client for node ``index`` (closed with the cluster)."""
        url = self.url(index)
        if url not in self._http:
            self._http[url] = HubbubHTTP(url)
        return self._http[url]

    # -- lifecycle -------------------------------------------------------------

    async def start(self, index: int) -> NodeProcess:
        """Start node ``index`` and return once its ``/health/ready`` answers 200 (which,
        with Redis configured, means its bridge is subscribed)."""
        node, holder = await self._nursery.start(self._hold, index)
        self.nodes[index], self._holders[index] = node, holder
        return node

    async def _hold(self, index: int, *, task_status: trio.TaskStatus[Any]) -> None:
        with trio.CancelScope() as holder:
            async with node_process(
                self.tmp_path / f"node-{index}",
                self.database_url,
                self.log_path(index),
                **self.settings,
            ) as node:
                task_status.started((node, holder))
                await trio.sleep_forever()

    def log_path(self, index: int) -> Path:
        return self.tmp_path / f"node-{index}.log"

    async def kill(self, index: int) -> None:
        """SIGKILL node ``index`` (no shutdown code runs) and wait until it is dead."""
        node = self.node(index)
        node.kill()
        assert await node.wait_dead() < 0, "the node should have died of SIGKILL"
        holder = self._holders[index]
        assert holder is not None
        holder.cancel()
        self.nodes[index] = self._holders[index] = None

    async def restart(self, index: int) -> NodeProcess:
        """SIGKILL node ``index`` and start it again (same settings and data dir, a new
        port); returns once it is ready."""
        await self.kill(index)
        return await self.start(index)

    async def ready_status(self, index: int) -> int:
        """The status ``GET /health/ready`` answers on node ``index``."""
        return (await self.http(index).get("/health/ready")).status_code

    # -- users -------------------------------------------------------------------

    async def register(self, prefix: str, via: int = 0) -> Account:
        """Sign up and log in a fresh user through node ``via``."""
        return await register(self.http(via), prefix)

    async def register_all(self, *prefixes: str) -> list[Account]:
        """Fresh users, one per prefix, signed up in parallel through the nodes in turn
        (password hashing is the slow part, and each node hashes on its own cores)."""
        accounts: list[Account | None] = [None] * len(prefixes)

        async def one(position: int, prefix: str) -> None:
            accounts[position] = await self.register(prefix, via=position % NODES)

        async with trio.open_nursery() as nursery:
            for position, prefix in enumerate(prefixes):
                nursery.start_soon(one, position, prefix)
        return [account for account in accounts if account is not None]

    @asynccontextmanager
    async def connect(self, account: Account, via: int) -> AsyncIterator[ChatClient]:
        """A WebSocket of ``account`` on node ``via``, yielded once attached: offline
        catch-up was sent and the user is online (the server answers frames only then)."""
        async with ChatClient.connect(self.url(via), account.access_token) as chat:
            await attached(chat)
            yield chat

    async def aclose(self) -> None:
        for http in self._http.values():
            await http.__aexit__(None, None, None)


@asynccontextmanager
async def open_cluster(
    tmp_path: Path, database_url: str, redis: Any, **overrides: str
) -> AsyncIterator[Cluster]:
    """Start ``NODES`` nodes in parallel on ``redis`` and ``database_url``; on exit SIGKILL
    and reap them all. ``overrides`` are HUBBUB_* settings by name, as in ``node_process``."""
    settings = {
        **DEFAULT_SETTINGS,
        "redis_url": redis.url,
        # Every node must sign and accept the same tokens.
        "jwt_secret": secrets.token_urlsafe(32),
        **overrides,
    }
    async with trio.open_nursery() as nursery:
        cluster = Cluster(tmp_path, database_url, redis, settings, nursery)
        try:
            async with trio.open_nursery() as starting:
                for index in range(NODES):
                    starting.start_soon(cluster.start, index)
            yield cluster
        finally:
            with trio.CancelScope(shield=True):
                await cluster.aclose()
            nursery.cancel_scope.cancel()
