"""The chat domain's ports: what it needs from the outside world, as narrow interfaces.

- ``Bus``: how an event reaches the actor that owns a user or a group, wherever it runs.
  Channels are ``user:<id>`` and ``group:<id>``; a node subscribes only to the channels
  of users and groups live on it.
- ``Presence``: who is online (a user is online while at least one session is open).
- ``RateLimiter``: per-user send limits.

``engine/cluster/`` implements each twice: in-process for one node (``local.py``) and on
Redis for many nodes.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection
from typing import Literal, Protocol

import attrs

Kind = Literal["direct", "group"]


def user_channel(user_id: int) -> str:
    return f"user:{user_id}"


def group_channel(group_id: int) -> str:
    return f"group:{group_id}"


@attrs.frozen(slots=True)
class Event:
    """Something to hand to the owner of a channel.

    ``frame`` is an already-encoded server frame (encoded once, sent to every session).
    ``kind`` says what it is (``message``, ``status``, ``presence`` ...); ``message_id``
    lets a receiver skip what it already sent during offline catch-up; ``origin`` is the
    publishing node's id so the Redis bridge can skip its own echoes. ``actor_id``: who
    caused it (a typer is not sent their own ``typing``). ``position``: the stream
    position of a stream event (0 for the others), set by the stream tail, node-local."""

    kind: str
    frame: bytes
    message_id: int | None = None
    origin: str = ""
    actor_id: int | None = None
    position: int = 0


#: The channel every node listens on for "the stream moved" (frame: the head, ASCII).
STREAM_CHANNEL = "stream"


Subscriber = Callable[[Event], None]


class Bus(abc.ABC):
    """Publish events to channels; subscribers are plain non-blocking callbacks."""

    @abc.abstractmethod
    async def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        """Receive every event published on ``channel`` from now on. One subscriber per
        channel per node (the channel's owning actor). Returns once events from other
        nodes flow too (or after a bounded wait, if the shared bus is down: it catches up
        when it reconnects)."""

    @abc.abstractmethod
    def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        """Stop; a no-op if ``subscriber`` is not the current one."""

    @abc.abstractmethod
    def publish(self, channel: str, event: Event) -> None:
        """Deliver to the channel's subscribers, on this node and (for a shared bus) on
        others. Never blocks; an event for a channel nobody holds is dropped, because
        storage, not the bus, is what offline users catch up from."""

    async def ready(self) -> bool:
        """Whether the bus can deliver across nodes now (always, for a local bus)."""
        return True


class Presence(abc.ABC):
    @abc.abstractmethod
    async def went_online(self, user_id: int) -> bool:
        """The user's first session on this node opened. True if they were offline
        everywhere before (so their contacts are to be told)."""

    @abc.abstractmethod
    async def went_offline(self, user_id: int) -> bool:
        """The user's last session on this node closed. True if now offline everywhere."""

    @abc.abstractmethod
    async def is_online(self, user_id: int) -> bool: ...

    @abc.abstractmethod
    async def online_among(self, user_ids: Collection[int]) -> set[int]:
        """Which of ``user_ids`` are online (one round trip where there is one to make)."""

    @abc.abstractmethod
    async def online_users(self) -> list[int]:
        """Every online user id, ascending."""


class RateLimiter(abc.ABC):
    @abc.abstractmethod
    async def allow(self, user_id: int, kind: Kind) -> bool:
        """Count one send of ``kind`` by ``user_id`` and say whether it is within the limit.
        A refused send is not counted."""


class Peer(Protocol):
    """What the chat domain needs of one connected device; ``ws.session.Session`` is one.

    Every method is safe to call from any task. ``push`` never blocks."""

    user_id: int
    username: str

    #: What the connection asked to resume from: None (v1), ``"now"``, or a cursor.
    since: str | None

    def push(self, payload: bytes, delivers: int | None = None) -> bool:
        """Queue an encoded frame; False if it was not queued (the peer is closing).
        ``delivers``: the direct message this frame delivers, reported through
        ``DeliveryListener.frames_written`` once the frame is written to the socket."""

    async def send(self, payload: bytes) -> bool:
        """Queue a frame, waiting for room; False if the peer is gone."""

    async def flushed(self) -> bool:
        """Wait until every frame queued so far is written to the socket; False if the
        peer closed (or was closed as too slow) first."""

    def refuse(self, reason: str, client_id: str | None = None) -> None:
        """Answer a refused frame with an ``error`` frame."""

    async def reserve_send(self) -> bool:
        """Take one of the peer's unacked-send slots; False if none frees up in time."""

    def settle_send(self) -> None:
        """Give back a slot: the send holding it was answered."""

    def close_soon(self, code: int, reason: str) -> None:
        """Close the connection with ``code``; the first code asked for wins."""


class DeliveryListener(Protocol):
    def frames_written(self, peer: Peer, message_ids: list[int]) -> None:
        """Frames delivering these direct messages were written to ``peer``'s socket."""
