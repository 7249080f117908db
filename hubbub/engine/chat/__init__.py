"""The chat domain: what a session's frames do and who receives what.

It never imports the transport (``ws/``, ``http/``) nor the Redis implementations
(``engine/cluster/``): it talks to them through ``ports.py``. ``build_chat`` assembles
it and returns the subtree the node mounts under its root supervisor::

    storage-writer   group commit; reads a mailbox the node owns (survives restarts)
    fan-out          acks each committed batch and hands it to the stream, off the writer
    stream-tail      delivers the stream (every committed event) in position order
    stream-sweeper   deletes stream events past their retention
    users            a UserActor per user with a session here (spawned on demand)
    user-waker       starts the actor of a parked user that has work (users.py)
    groups           a GroupActor per group with a member online here

Blocks (``blocks.py``) are kept in memory per live user and changed through the bus.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection
from typing import Any

import attrs

from hubbub.engine.chat.blocks import BLOCKS_CHANGED, BlockCache
from hubbub.engine.chat.direct import DirectMessaging
from hubbub.engine.chat.directory import UserDirectory
from hubbub.engine.chat.dispatch import ChatDispatcher
from hubbub.engine.chat.fanout import CommitQueue, FanOut
from hubbub.engine.chat.group_actor import GroupActor
from hubbub.engine.chat.groups import GroupMessaging
from hubbub.engine.chat.messages import DISCONNECT, Resync
from hubbub.engine.chat.ports import (
    Bus,
    Event,
    Presence,
    RateLimiter,
    group_channel,
    user_channel,
)
from hubbub.engine.chat.presence import PresenceAnnouncer
from hubbub.engine.chat.render import StreamRenderer
from hubbub.engine.chat.resume import Resumption
from hubbub.engine.chat.rich import RichMessages
from hubbub.engine.chat.routing import StreamRouting
from hubbub.engine.chat.server_send import SendAnswer, ServerSends
from hubbub.engine.chat.storage_writer import StorageWriter
from hubbub.engine.chat.stream import StreamTail
from hubbub.engine.chat.sweeper import StreamSweeper
from hubbub.engine.chat.sync import ConversationList, StreamQueries, parse_conversation_token
from hubbub.engine.chat.typing import TypingRelay
from hubbub.engine.chat.user_actor import UserActor
from hubbub.engine.chat.users import LocalUsers
from hubbub.engine.chat.writes import ImagePolicy, WriteGate, refuse_unstored
from hubbub.engine.runtime.actor import ActorError, Mailbox
from hubbub.engine.runtime.registry import Registry
from hubbub.engine.runtime.supervisor import Child, ChildSpec, Restart, Supervisor
from hubbub.engine.runtime.task_child import TaskChild
from hubbub.metrics import Metrics
from hubbub.protocol import frames
from hubbub.storage import Storage
from hubbub.storage.webhook_store import Webhooks

WRITER_MAILBOX = 8192
#: Restart intensity of the users and groups supervisors: many small actors.
ACTOR_RESTARTS = (50, 10.0)


@attrs.define
class Chat:
    """The assembled chat domain of one node."""

    dispatcher: ChatDispatcher
    direct: DirectMessaging
    groups: GroupMessaging
    announcer: PresenceAnnouncer
    directory: UserDirectory
    users: Registry[int]
    local_users: LocalUsers
    group_actors: Registry[int]
    bus: Bus
    presence: Presence
    stream: StreamTail
    #: ``GET /sync`` and ``GET /conversations``.
    queries: StreamQueries
    conversation_list: ConversationList
    #: The block relations of the users live here.
    blocks: BlockCache
    #: The subtree to mount under the node's root supervisor, in start order.
    children: list[ChildSpec]
    #: The server API's sends (``server_send.py``).
    server_sends: ServerSends
    #: How long a UserActor without sessions lingers before it stops.
    user_idle_timeout: float = 30.0
    #: How long a UserActor with idle sessions runs before it parks (users.py).
    user_park_after: float = 1.0

    # -- what HTTP and the cluster layer ask of the chat domain ---------------

    async def membership_changed(self, group_id: int, joined: int | None = None) -> None:
        await self.groups.membership_changed(group_id, joined)

    async def is_online(self, user_id: int) -> bool:
        return await self.announcer.is_online(user_id)

    async def send_as(
        self, user_id: int, username: str, frame: frames.SendDirect | frames.SendGroup
    ) -> SendAnswer:
        """Send ``frame`` as if ``user_id`` had sent it over a WebSocket, without its rate
        limit (``server_send.py``)."""
        return await self.server_sends.send(user_id, username, frame)

    async def disconnect(self, user_id: int) -> None:
        """Close every connection of ``user_id``, on every node, with 1008: the event
        goes over the bus to whichever nodes hold the user's sessions."""
        self.bus.publish(user_channel(user_id), Event(DISCONNECT, b""))

    async def presence_of(self, user_id: int, viewer: int | None = None) -> object:
        """``user_id``'s presence as ``viewer`` may see it (a block hides it)."""
        return await self.announcer.presence_of(user_id, viewer)

    async def online_users(self, viewer: int | None = None) -> list[int]:
        """Every online user, but those ``viewer`` has a block with (either way)."""
        online = await self.presence.online_users()
        if viewer is None:
            return online
        hidden = await self.blocks.hidden_from(viewer)
        return [user_id for user_id in online if user_id not in hidden]

    async def blocks_changed(self, blocker_id: int, blocked_id: int) -> None:
        """A block between the two was committed (set or lifted): every node where either
        is live re-reads their relations; this node has before this returns."""
        for user_id, other_id in ((blocker_id, blocked_id), (blocked_id, blocker_id)):
            self.bus.publish(user_channel(user_id), Event(BLOCKS_CHANGED, b"", actor_id=other_id))
        for user_id in (blocker_id, blocked_id):
            await self.blocks.refresh(user_id)

    async def user_expired(self, user_id: int) -> None:
        await self.announcer.expired(user_id)

    async def sync(self, user_id: int, since: str, limit: int) -> dict[str, Any]:
        return await self.queries.sync(user_id, since, limit)

    async def conversations(self, user_id: int, before: str | None, limit: int) -> dict:
        """The caller's conversation page; ``ValueError`` for a ``before`` that is not a
        ``next`` this server gave."""
        key = None
        if before is not None:
            key = parse_conversation_token(before)
            if key is None:
                raise ValueError("before must be a next value of an earlier page")
        return await self.conversation_list.page(user_id, key, limit)

    def users_here(self) -> list[int]:
        return self.local_users.with_sessions()

    async def resync(self, channels: Collection[str] | None = None) -> None:
        """After the shared bus was down or lost events: the live users and groups of
        ``channels`` (None: every one on this node) fetch from storage what live delivery
        may have missed."""
        wanted = None if channels is None else set(channels)
        self.local_users.resync(
            None
            if wanted is None
            else {k for k in self.local_users.live() if user_channel(k) in wanted}
        )
        self.stream.poll_now()
        for group_id in list(self.group_actors.keys()):
            if wanted is not None and group_channel(group_id) not in wanted:
                continue
            actor = self.group_actors.get(group_id)
            if actor is not None:
                with contextlib.suppress(ActorError):
                    actor.tell_nowait(Resync())


def build_chat(
    *,
    storage: Storage,
    bus: Bus,
    presence: Presence,
    rate_limiter: RateLimiter,
    metrics: Metrics,
    image_policy: ImagePolicy | None,
    max_text_length: int = 4000,
    stream_retention: float = 30 * 86400.0,
    sweep_interval: float = 3600.0,
    on_restart: Callable[[str, str, BaseException | None], None] | None = None,
    webhooks: Webhooks | None = None,
) -> Chat:
    """Wire the chat domain: each part gets the two or three collaborators it uses.
    ``webhooks``: given when webhooks are on (presence transitions are recorded there)."""
    directory = UserDirectory(storage)
    blocks = BlockCache(storage)
    mailbox = Mailbox(WRITER_MAILBOX)
    gate = WriteGate(
        mailbox=mailbox, storage=storage, rate_limiter=rate_limiter, image_policy=image_policy
    )
    max_restarts, within = ACTOR_RESTARTS
    users_supervisor = Supervisor(
        "users", on_restart=on_restart, max_restarts=max_restarts, within_seconds=within
    )
    groups_supervisor = Supervisor(
        "groups", on_restart=on_restart, max_restarts=max_restarts, within_seconds=within
    )
    users: Registry[int] = Registry(users_supervisor, lambda user_id: user_spec(user_id))
    group_actors: Registry[int] = Registry(groups_supervisor, lambda group_id: group_spec(group_id))
    local_users = LocalUsers(users)
    # What every rule works with (``ChatPart``), then what each needs besides.
    part: dict[str, Any] = {"storage": storage, "bus": bus, "directory": directory}
    renderer = StreamRenderer(directory=directory, group_name=lambda g: groups.group_name(g))
    routing = StreamRouting(users=local_users, group_actors=group_actors)
    stream = StreamTail(
        storage,
        renderer,
        routing.dispatch,
        bus=bus,
        on_delivered=lambda kind, seconds: metrics.delivery[kind].observe(seconds),
    )
    direct = DirectMessaging(
        **part, presence=presence, gate=gate, metrics=metrics, stream=stream, blocks=blocks
    )
    groups = GroupMessaging(
        **part, gate=gate, metrics=metrics, group_actors=group_actors, stream=stream
    )
    metrics.stream_position.set_function(lambda: max(stream.position, 0))
    announcer = PresenceAnnouncer(**part, presence=presence, blocks=blocks, webhooks=webhooks)
    resume = Resumption(
        storage=storage, stream=stream, renderer=renderer, direct=direct, groups=groups
    )
    rich = RichMessages(
        storage=storage,
        groups=groups,
        stream=stream,
        blocks=blocks,
        max_text_length=max_text_length,
    )
    typing = TypingRelay(bus=bus, directory=directory, groups=groups)
    sweeper = StreamSweeper(storage=storage, retention=stream_retention, every=sweep_interval)
    commits = CommitQueue()

    def make_writer() -> StorageWriter:
        return StorageWriter(
            storage,
            on_committed=commits.committed,
            on_failed=refuse_unstored,
            on_batch=observe_batch,
            mailbox=mailbox,
        )

    def observe_batch(size: int, seconds: float) -> None:
        metrics.commit_batch_size.observe(size)
        metrics.commit_seconds.observe(seconds)

    chat = Chat(
        dispatcher=ChatDispatcher(
            users=users,
            directory=directory,
            direct=direct,
            groups=groups,
            announcer=announcer,
            gate=gate,
            rich=rich,
            typing=typing,
            local_users=local_users,
            live_pending=routing.live_pending,
        ),
        direct=direct,
        groups=groups,
        announcer=announcer,
        directory=directory,
        users=users,
        local_users=local_users,
        group_actors=group_actors,
        bus=bus,
        presence=presence,
        stream=stream,
        queries=StreamQueries(storage=storage, resume=resume, renderer=renderer),
        conversation_list=ConversationList(
            storage=storage, directory=directory, group_name=renderer.group_name
        ),
        blocks=blocks,
        server_sends=ServerSends(direct=direct, groups=groups),
        children=[
            # The tail first: commits hand it their events from the start.
            ChildSpec("stream-tail", lambda: stream),
            ChildSpec("storage-writer", make_writer),
            ChildSpec("fan-out", lambda: FanOut(commits, direct, groups)),
            ChildSpec("stream-sweeper", lambda: TaskChild("stream-sweeper", sweeper.run)),
            ChildSpec("users", lambda: users_supervisor),
            ChildSpec("user-waker", lambda: TaskChild("user-waker", local_users.run)),
            ChildSpec("groups", lambda: groups_supervisor),
        ],
    )

    def user_spec(user_id: int) -> ChildSpec:
        return _transient(
            f"user:{user_id}",
            lambda: UserActor(
                user_id=user_id,
                bus=bus,
                direct=direct,
                groups=groups,
                announcer=announcer,
                gate=gate,
                resume=resume,
                blocks=blocks,
                users=local_users,
                idle=chat.user_idle_timeout,
                park_after=chat.user_park_after,
            ),
        )

    def group_spec(group_id: int) -> ChildSpec:
        return _transient(
            f"group:{group_id}",
            lambda: GroupActor(
                group_id=group_id, storage=storage, bus=bus, users=local_users, metrics=metrics
            ),
        )

    return chat


def _transient(name: str, build: Callable[[], Child]) -> ChildSpec:
    """An on-demand actor: restarted if it crashes, not when it passivates."""
    return ChildSpec(name, build, Restart.TRANSIENT)
