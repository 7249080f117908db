"""A node: one process serving HTTP and WebSocket, with its actors under one supervisor.

The tree (``/health/supervisor`` serves it live)::

    node (one_for_one)
    ├── redis-bridge       with HUBBUB_REDIS_URL: the bus across nodes
    ├── presence           with HUBBUB_REDIS_URL: heartbeats; expires dead nodes' users
    ├── node-registry      with HUBBUB_REDIS_URL: this node's beat in the live-node set
    ├── storage-writer     group commit of every message write (its mailbox survives restarts)
    ├── fan-out            acks and publishes what each commit stored
    ├── users              a UserActor per user with a session here (spawned on demand)
    ├── user-waker         starts the actor of a parked user that has work to do
    ├── groups             a GroupActor per group with a member online here
    ├── webhook-sender     with HUBBUB_WEBHOOK_URL: POSTs the outbox (one node at a time)
    ├── keepalive          pings silent connections, closes the unanswering
    ├── http               the Quart app's lifespan (Hypercorn)
    └── front-door         the listening port: /ws/chat to sessions, the rest to http
"""

from __future__ import annotations

import gc
import logging
import signal
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

import attrs
import trio

from hubbub.auth.product_keys import load_product_verifier
from hubbub.auth.product_users import ProductSignIn
from hubbub.auth.tokens import TokenIssuer
from hubbub.config import Settings, describe
from hubbub.engine.chat import Chat, build_chat
from hubbub.engine.cluster import Cluster, ClusterHooks, open_cluster
from hubbub.engine.runtime.registry import Registry
from hubbub.engine.runtime.supervisor import ChildSpec, Supervisor
from hubbub.engine.runtime.task_child import TaskChild
from hubbub.front_door import FrontDoor, open_listeners
from hubbub.http.app import create_app
from hubbub.http.context import HttpContext, OpsSources
from hubbub.http.server import HttpServer
from hubbub.media import store_for
from hubbub.metrics import Metrics
from hubbub.storage import Storage, StorageError, open_storage
from hubbub.storage.webhook_store import Webhooks
from hubbub.webhooks import WebhookConfig, WebhookSender
from hubbub.ws.endpoint import ChatEndpoint
from hubbub.ws.flusher import SocketFlusher
from hubbub.ws.keepalive import Keepalive
from hubbub.ws.session import CLOSE_SERVICE_RESTART

log = logging.getLogger("hubbub")

READY_TIMEOUT = 2.0
#: How long closing may take once a drained node closed its sessions: each commits its
#: delivery marks first (``writes.FLUSH_WAIT``, 2 s at most), then the handshake.
CLOSE_GRACE = 4.0


@attrs.define
class Node:
    """A running node; ``open_node`` builds and starts one."""

    settings: Settings
    storage: Storage
    metrics: Metrics
    chat: Chat
    root: Supervisor
    users: Registry[int]
    cluster: Cluster
    door: FrontDoor
    endpoint: ChatEndpoint
    port: int = 0
    draining: bool = False

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    async def readiness(self) -> dict[str, bool]:
        if self.draining:
            return {"accepting": False}
        checks = {"storage": True}
        try:
            with trio.fail_after(READY_TIMEOUT):
                await self.storage.ping()
        except (StorageError, trio.TooSlowError):
            checks["storage"] = False
        checks.update(await self.cluster.readiness())
        return checks

    async def drain(self, timeout: float) -> dict[str, int]:
        """Stop as a deploy wants it: refuse new connections (and answer ``/health/ready``
        503) at once, stop reading frames, answer every send already read (commit, ack),
        flush what each connection has queued, then close every WebSocket with 1012
        (service restart) so clients reconnect elsewhere at once. Bounded by ``timeout``
        seconds in all; returns what it did, for the log."""
        self.draining = True
        self.endpoint.draining = True  # a handshake still under way ends in 1012 too
        with trio.move_on_after(timeout) as deadline:
            await self.door.stop_accepting()
            sessions = list(self.endpoint.sessions)
            for session in sessions:
                session.stop_reading()
            # Sends already read reach the writer; their answers come back through it.
            for session in sessions:
                await session.wait_settled()
            async with trio.open_nursery() as nursery:
                for session in sessions:
                    nursery.start_soon(session.flushed)
        sessions = list(self.endpoint.sessions)
        unanswered = sum(not session.settled for session in sessions)
        for session in sessions:
            session.close_soon(CLOSE_SERVICE_RESTART, "service restart")
        with trio.move_on_after(CLOSE_GRACE):
            await self.endpoint.wait_all_closed()
        return {
            "connections": len(sessions),
            "unanswered": unanswered,
            "timed_out": int(deadline.cancelled_caught),
        }


@asynccontextmanager
async def open_node(settings: Settings) -> AsyncIterator[Node]:
    """Open storage, migrate, start the supervision tree and listen; yield the running
    node; on exit stop everything. Start-up errors (product keys unusable, storage
    unreachable, port taken) propagate before anything is yielded."""
    metrics = Metrics()

    # The cluster calls back into the chat domain, which is built on the cluster's
    # ports: the hooks are closures over ``chat``, which exists before any can run
    # (they run inside the supervision tree, started below).
    async def resync(channels: Collection[str] | None) -> None:
        await chat.resync(channels)

    async def user_expired(user_id: int) -> None:
        await chat.user_expired(user_id)

    hooks = ClusterHooks(
        local_users=lambda: chat.users_here(), user_expired=user_expired, resync=resync
    )

    def on_restart(supervisor: str, child: str, error: BaseException | None) -> None:
        metrics.restarts.labels(supervisor).inc()
        if child == "groups":
            # Its GroupActors are gone: live users start their groups' actors again.
            chat.local_users.resync()

    # Before anything opens: unusable product keys stop the start (ConfigError).
    product_verifier = await trio.to_thread.run_sync(load_product_verifier, settings)
    async with (
        open_storage(settings.database_url, timeout=settings.database_timeout) as storage,
        open_cluster(settings, hooks, metrics) as cluster,
    ):
        version = await storage.migrate()
        log.info(
            "storage ready",
            extra={"fields": {"backend": storage.backend, "schema_version": version}},
        )
        webhook_config = WebhookConfig.of(settings)
        webhooks = None
        if webhook_config is not None:
            assert isinstance(storage, Webhooks)  # both backends are
            await storage.enable_webhooks()
            webhooks = storage
        chat = build_chat(
            storage=storage,
            bus=cluster.bus,
            presence=cluster.presence,
            rate_limiter=cluster.rate_limiter,
            metrics=metrics,
            image_policy=store_for(settings.media_dir).knows_url,
            max_text_length=settings.max_message_length,
            stream_retention=settings.stream_retention_days * 86400.0,
            sweep_interval=settings.stream_sweep_interval,
            on_restart=on_restart,
            webhooks=webhooks,
        )
        tokens = TokenIssuer(
            settings.jwt_secret, settings.access_token_ttl, settings.refresh_token_ttl
        )
        product_sign_in = (
            None if product_verifier is None else ProductSignIn(product_verifier, storage)
        )
        http = HttpServer(
            create_app(
                HttpContext(
                    settings=settings,
                    storage=storage,
                    tokens=tokens,
                    metrics=metrics,
                    supervisor_snapshot=lambda: root.snapshot(),
                    readiness=lambda: node.readiness(),
                    chat=chat,
                    ops=OpsSources(
                        node_id=cluster.node_id,
                        live_nodes=cluster.live_nodes,
                        connections=lambda: len(endpoint.sessions),
                    ),
                    product_sign_in=product_sign_in,
                )
            )
        )
        keepalive = Keepalive(settings.ping_interval, settings.ping_timeout)
        flusher = SocketFlusher()
        endpoint = ChatEndpoint(
            settings=settings,
            tokens=tokens,
            storage=storage,
            metrics=metrics,
            handler=chat.dispatcher,
            keepalive=keepalive,
            flusher=flusher,
            product_sign_in=product_sign_in,
        )
        door = FrontDoor(
            await open_listeners(settings.host, settings.port, shared=settings.workers > 1),
            websocket=endpoint.serve,
            http=http.serve_connection,
        )
        root = Supervisor(
            "node",
            [
                *cluster.children,
                *chat.children,
                *_webhook_children(storage, webhooks, webhook_config, metrics),
                ChildSpec("keepalive", lambda: TaskChild("keepalive", keepalive.run)),
                ChildSpec("socket-flusher", lambda: TaskChild("socket-flusher", flusher.run)),
                ChildSpec("http", lambda: TaskChild("http", http.run)),
                ChildSpec("front-door", lambda: TaskChild("front-door", door.run)),
            ],
            on_restart=on_restart,
        )
        node = Node(settings, storage, metrics, chat, root, chat.users, cluster, door, endpoint)
        async with trio.open_nursery() as nursery:
            await nursery.start(root.run)
            node.port = door.port
            cluster.describe(lambda: {"url": node.url, "connections": len(endpoint.sessions)})
            log.info(
                "node started",
                extra={"fields": {"url": node.url, **describe(settings)}},
            )
            try:
                yield node
            finally:
                nursery.cancel_scope.cancel()


def _webhook_children(
    storage: Storage,
    webhooks: Webhooks | None,
    config: WebhookConfig | None,
    metrics: Metrics,
) -> list[ChildSpec]:
    """The webhook sender, when webhooks are on."""
    if webhooks is None or config is None:
        return []
    sender = WebhookSender(storage=storage, webhooks=webhooks, config=config, metrics=metrics)
    return [ChildSpec("webhook-sender", lambda: TaskChild("webhook-sender", sender.run))]


def _freeze_startup_heap() -> None:
    """Take what the started node holds for good (modules, the app, its routes: some
    110,000 objects) out of the cyclic collector's sight. Each full collection walked
    them all otherwise: a pause of about 50 ms, with 400 messages in flight, on every
    20,000 messages or so; 5 ms after this (docs/scaling.md)."""
    gc.collect()
    gc.freeze()


async def serve(settings: Settings) -> None:
    """Run a node until SIGTERM or SIGINT, then drain it (``Node.drain``) and stop."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with open_node(settings) as node:
            _freeze_startup_heap()
            async for signum in signals:
                log.info(
                    "draining",
                    extra={"fields": {"signal": signal.Signals(signum).name}},
                )
                break
            done = await node.drain(settings.drain_timeout)
            log.info("drained, stopping", extra={"fields": done})
