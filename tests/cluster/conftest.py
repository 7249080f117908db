"""Multi-node fixtures: three ``python -m hubbub serve`` subprocesses sharing one fresh
PostgreSQL database and one Redis of the test's own, with a common JWT secret.

Each test gets its own cluster, so a test may SIGKILL a node or the Redis without harming
another; the nodes are subprocesses because that is the only honest way to crash one.
``async with cluster_factory(direct_rate_limit="5") as cluster:`` tunes the settings.
"""

from __future__ import annotations

import itertools
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from servers import RedisServer

from hubbub.client import Account, ChatClient, HubbubHTTP
from tests.e2e.subprocess_node import NodeProcess, node_process

NODES = 3
PASSWORD = "correct horse battery"
#: Far above what any test sends, unless a test asks for a limit (the burst must not hit it).
DEFAULT_SETTINGS = {"direct_rate_limit": "1000000", "group_rate_limit": "1000000"}
POLL_INTERVAL = 0.05

Frame = dict[str, Any]
ClusterFactory = Callable[..., AbstractAsyncContextManager["Cluster"]]


@attrs.define
class Cluster:
    """Three running nodes (``nodes[0]`` is "A", then "B", "C"), their Redis and database.

    ``nodes`` is current: ``restart`` replaces an entry (the node comes back on a new port).
    """

    tmp_path: Path
    database_url: str
    redis: RedisServer
    settings: dict[str, str]
    _nursery: trio.Nursery
    nodes: list[NodeProcess | None] = attrs.Factory(lambda: [None] * NODES)
    _holders: list[trio.CancelScope | None] = attrs.Factory(lambda: [None] * NODES)
    _http: dict[str, HubbubHTTP] = attrs.Factory(dict)
    _names: Iterator[int] = attrs.Factory(lambda: itertools.count(1))

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
        name = f"{prefix}{next(self._names)}"
        return await self.http(via).register(name, f"{name}@example.com", PASSWORD)

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
    tmp_path: Path, database_url: str, redis: RedisServer, **overrides: str
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


# -- waiting and reading frames -----------------------------------------------------


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float) -> None:
    """Return once ``check()`` is true. For states only visible by asking (another
    process's HTTP views or health); fails saying ``what`` did not happen in time."""
    try:
        with trio.fail_after(timeout):
            while True:
                if await check():
                    return
                # Another process's state: there is no event to wait on, only the deadline.
                await trio.sleep(POLL_INTERVAL)
    except trio.TooSlowError:
        raise AssertionError(f"{what} did not happen within {timeout} s") from None


async def attached(chat: ChatClient) -> None:
    """Wait until the session answers a ping: catch-up is done and the user is online."""
    await chat.send({"type": "ping"})
    await chat.receive_type("pong", timeout=10)


async def frames_until(
    chat: ChatClient, last: Callable[[Frame], bool], timeout: float = 10.0
) -> list[Frame]:
    """Every frame received up to and including the first for which ``last`` is true."""
    seen: list[Frame] = []
    with trio.fail_after(timeout):
        while not seen or not last(seen[-1]):
            seen.append(await chat.receive(timeout=timeout))
    return seen


async def drain(chat: ChatClient, timeout: float = 10.0) -> list[Frame]:
    """Every frame the server queued for ``chat`` before it answered a new ping (the pong
    itself left out)."""
    await chat.send({"type": "ping"})
    return (await frames_until(chat, lambda frame: frame["type"] == "pong", timeout))[:-1]


def is_text(frame_type: str, text: str) -> Callable[[Frame], bool]:
    return lambda frame: frame["type"] == frame_type and frame.get("message") == text


def counts(frames: Iterable[Frame], frame_type: str) -> Counter[int]:
    """How many times each message id came in frames of ``frame_type``."""
    return Counter(frame["message_id"] for frame in frames if frame["type"] == frame_type)


async def send_direct(
    chat: ChatClient, recipient_id: int, text: str, client_id: str
) -> dict[str, Any]:
    """Send a direct message and return its ``ack`` (or the ``error`` that refused it)."""
    frame = {"type": "message", "recipient_id": recipient_id, "message": text}
    await chat.send({**frame, "client_id": client_id})
    return await chat.receive_where(
        lambda f: f["type"] in ("ack", "error") and f.get("client_id") == client_id, timeout=10
    )


async def send_group(chat: ChatClient, group_id: int, text: str, client_id: str) -> dict[str, Any]:
    """Send a group message and return its ``ack`` (or the ``error`` that refused it)."""
    frame = {"type": "group_message", "group_id": group_id, "message": text}
    await chat.send({**frame, "client_id": client_id})
    return await chat.receive_where(
        lambda f: f["type"] in ("ack", "error") and f.get("client_id") == client_id, timeout=10
    )


async def presence_view(cluster: Cluster, via: int, viewer: Account, user_id: int) -> str:
    """``presence_status`` of ``user_id`` from ``GET /users/presence/{id}`` on node ``via``."""
    response = await cluster.http(via).get(f"/users/presence/{user_id}", viewer.access_token)
    assert response.status_code == 200, response.text
    return response.json()["presence_status"]


async def online_view(cluster: Cluster, via: int, viewer: Account) -> list[int]:
    """``GET /users/online`` on node ``via``."""
    response = await cluster.http(via).get("/users/online", viewer.access_token)
    assert response.status_code == 200, response.text
    return response.json()["online"]


async def direct_history(
    cluster: Cluster, via: int, viewer: Account, other_id: int, page: int = 200
) -> list[Frame]:
    """The whole direct conversation of ``viewer`` with ``other_id``, through node ``via``,
    paging backwards; ascending ids."""
    pages: list[list[Frame]] = []
    before: int | None = None
    while True:
        params: dict[str, int] = {"limit": page}
        if before is not None:
            params["before"] = before
        response = await cluster.http(via).get(
            f"/messages/{other_id}", viewer.access_token, **params
        )
        assert response.status_code == 200, response.text
        messages = response.json()
        if messages:
            pages.append(messages)
            before = messages[0]["message_id"]
        if len(messages) < page:
            return [message for chunk in reversed(pages) for message in chunk]
