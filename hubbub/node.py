"""A node: one process serving HTTP and WebSocket, with its actors under one supervisor.

The tree (``/health/supervisor`` serves it live)::

    node (one_for_one)
    ├── redis-bridge       with HUBBUB_REDIS_URL: the bus across nodes
    ├── presence           with HUBBUB_REDIS_URL: heartbeats; expires dead nodes' users
    ├── storage-writer     group commit of every message write
    ├── users              a UserActor per user with a session here (spawned on demand)
    ├── groups             a GroupActor per group with a member online here
    ├── keepalive          pings silent connections, closes the unanswering
    ├── http               the Quart app's lifespan (Hypercorn)
    └── front-door         the listening port: /ws/chat to sessions, the rest to http
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

from hubbub.auth.tokens import TokenIssuer
from hubbub.config import Settings, describe
from hubbub.engine.chat.chat_service import ChatService
from hubbub.engine.chat.directory import UserDirectory
from hubbub.engine.chat.group_actor import GroupActor
from hubbub.engine.chat.storage_writer import StorageWriter
from hubbub.engine.chat.user_actor import UserActor
from hubbub.engine.cluster import Cluster, ClusterHooks, open_cluster
from hubbub.engine.runtime.registry import Registry
from hubbub.engine.runtime.supervisor import ChildSpec, Restart, Supervisor
from hubbub.engine.runtime.task_child import TaskChild
from hubbub.front_door import FrontDoor, open_listeners
from hubbub.http.app import create_app
from hubbub.http.context import HttpContext
from hubbub.http.server import HttpServer
from hubbub.media import store_for
from hubbub.metrics import Metrics
from hubbub.storage import Storage, StorageError, open_storage
from hubbub.ws.endpoint import ChatEndpoint
from hubbub.ws.keepalive import Keepalive

log = logging.getLogger("hubbub")

READY_TIMEOUT = 2.0


@attrs.define
class Node:
    """A running node; ``open_node`` builds and starts one."""

    settings: Settings
    storage: Storage
    metrics: Metrics
    chat: ChatService
    root: Supervisor
    users: Registry[int]
    cluster: Cluster
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    async def readiness(self) -> dict[str, bool]:
        checks = {"storage": True}
        try:
            with trio.fail_after(READY_TIMEOUT):
                await self.storage.ping()
        except (StorageError, trio.TooSlowError):
            checks["storage"] = False
        checks.update(await self.cluster.readiness())
        return checks


@asynccontextmanager
async def open_node(settings: Settings) -> AsyncIterator[Node]:
    """Open storage, migrate, start the supervision tree and listen; yield the running
    node; on exit stop everything. Start-up errors (storage unreachable, port taken)
    propagate before anything is yielded."""
    metrics = Metrics()
    chat_ref: list[ChatService] = []
    hooks = ClusterHooks(
        local_users=lambda: chat_ref[0].local_users(),
        user_expired=lambda user_id: chat_ref[0].user_expired(user_id),
        # ``channels`` (what may have been missed) is not narrowed on yet: resync everyone.
        resync=lambda channels: chat_ref[0].resync(),
    )
    async with (
        open_storage(settings.database_url, timeout=settings.database_timeout) as storage,
        open_cluster(settings, hooks, metrics) as cluster,
    ):
        version = await storage.migrate()
        log.info(
            "storage ready",
            extra={"fields": {"backend": storage.backend, "schema_version": version}},
        )
        chat = ChatService(
            settings=settings,
            storage=storage,
            metrics=metrics,
            bus=cluster.bus,
            presence=cluster.presence,
            rate_limiter=cluster.rate_limiter,
            directory=UserDirectory(storage),
        )
        chat_ref.append(chat)
        chat.image_policy = store_for(settings.media_dir).knows_url
        tokens = TokenIssuer(
            settings.jwt_secret, settings.access_token_ttl, settings.refresh_token_ttl
        )

        def on_restart(supervisor: str, child: str, error: BaseException | None) -> None:
            metrics.restarts.labels(supervisor).inc()

        users_supervisor = Supervisor(
            "users", on_restart=on_restart, max_restarts=50, within_seconds=10
        )
        users = Registry(
            users_supervisor,
            lambda user_id: ChildSpec(
                f"user:{user_id}",
                lambda: UserActor(user_id, chat, idle_timeout=chat.user_idle_timeout),
                Restart.TRANSIENT,
            ),
        )
        chat.users = users
        groups_supervisor = Supervisor(
            "groups", on_restart=on_restart, max_restarts=50, within_seconds=10
        )
        chat.groups.groups = Registry(
            groups_supervisor,
            lambda group_id: ChildSpec(
                f"group:{group_id}", lambda: GroupActor(group_id, chat), Restart.TRANSIENT
            ),
        )

        def make_writer() -> StorageWriter:
            writer = StorageWriter(
                storage,
                on_direct=chat.on_direct_committed,
                on_group=chat.on_group_committed,
                on_failed=chat.on_write_failed,
            )
            chat.writer = writer
            return writer

        node_ref: list[Node] = []
        http_context = HttpContext(
            settings=settings,
            storage=storage,
            tokens=tokens,
            metrics=metrics,
            supervisor_snapshot=lambda: node_ref[0].root.snapshot(),
            readiness=lambda: node_ref[0].readiness(),
            chat=chat,
        )
        http = HttpServer(create_app(http_context))
        keepalive = Keepalive(settings.ping_interval, settings.ping_timeout)
        endpoint = ChatEndpoint(
            settings=settings,
            tokens=tokens,
            storage=storage,
            metrics=metrics,
            handler=chat,
            keepalive=keepalive,
        )
        door = FrontDoor(
            await open_listeners(settings.host, settings.port),
            websocket=endpoint.serve,
            http=http.serve_connection,
        )

        root = Supervisor(
            "node",
            [
                *cluster.children,
                ChildSpec("storage-writer", make_writer),
                ChildSpec("users", lambda: users_supervisor),
                ChildSpec("groups", lambda: groups_supervisor),
                ChildSpec("keepalive", lambda: TaskChild("keepalive", keepalive.run)),
                ChildSpec("http", lambda: TaskChild("http", http.run)),
                ChildSpec("front-door", lambda: TaskChild("front-door", door.run)),
            ],
            on_restart=on_restart,
        )
        node = Node(settings, storage, metrics, chat, root, users, cluster)
        node_ref.append(node)
        async with trio.open_nursery() as nursery:
            await nursery.start(root.run)
            node.port = door.port
            log.info(
                "node started",
                extra={"fields": {"url": node.url, **describe(settings)}},
            )
            try:
                yield node
            finally:
                nursery.cancel_scope.cancel()


async def serve(settings: Settings) -> None:
    """Run a node until interrupted."""
    async with open_node(settings):
        await trio.sleep_forever()
