"""The bus: how an event reaches the actor that owns a user or a group, wherever it runs.

Channels are ``user:<id>`` and ``group:<id>``. A node subscribes only to the channels of
users and groups live on it. ``LocalBus`` serves one node; the Redis bridge (many nodes)
implements the same interface.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import attrs


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
    publishing node's id so the Redis bridge can skip its own echoes."""

    kind: str
    frame: bytes
    message_id: int | None = None
    origin: str = ""


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


class LocalBus(Bus):
    """In-process delivery for a single node."""

    def __init__(self) -> None:
        self._subscribers: dict[str, Subscriber] = {}

    async def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        self._subscribers[channel] = subscriber

    def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        # ==, not is: a bound method is a new object at each access.
        if self._subscribers.get(channel) == subscriber:
            del self._subscribers[channel]

    def publish(self, channel: str, event: Event) -> None:
        subscriber = self._subscribers.get(channel)
        if subscriber is not None:
            subscriber(event)

    def channels(self) -> list[str]:
        return list(self._subscribers)
