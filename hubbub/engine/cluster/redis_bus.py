"""The RedisBridge: the bus across nodes, on Redis pub/sub.

A node subscribes in Redis only to the channels of the users and groups live on it, and
unsubscribes when their actor stops, so traffic goes only where it is needed. An event
is delivered to the local subscriber at once and published to Redis for the other nodes;
each event carries its origin node, so a node skips its own echo: delivery never doubles
and never skips a device connected elsewhere.

Redis going away is survivable: publishing drops what it cannot send (the messages are in
storage, and reach their recipients from there), the subscriber reconnects with back-off
and resubscribes, and ``on_reconnect`` lets the node resync its live users.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import coredis
import trio

from hubbub.engine.chat.ports import Bus, Event, Subscriber
from hubbub.engine.cluster.redis_guard import REDIS_DOWN

log = logging.getLogger("hubbub.engine")

SUBSCRIBE_TIMEOUT = 2.0
PUBLISH_TIMEOUT = 2.0
PING_TIMEOUT = 1.0
PUBLISH_BATCH = 512
MAX_BACKOFF = 5.0


def encode_event(event: Event, origin: str) -> bytes:
    """``origin|kind|message_id|frame``: a header the receiving node reads, then the frame."""
    message_id = b"" if event.message_id is None else str(event.message_id).encode()
    return b"|".join((origin.encode(), event.kind.encode(), message_id, event.frame))


def decode_event(data: bytes) -> Event:
    origin, kind, message_id, frame = data.split(b"|", 3)
    return Event(kind.decode(), frame, int(message_id) if message_id else None, origin.decode())


class RedisBridge(Bus):
    """A ``Bus`` shared by every node on one Redis. Run ``run()`` under a supervisor."""

    def __init__(
        self,
        client: coredis.Redis,
        node_id: str,
        *,
        prefix: str = "hubbub:",
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
        outbox_size: int = 65536,
    ) -> None:
        self.client = client
        self.node_id = node_id
        self.prefix = prefix
        self.on_reconnect = on_reconnect
        self._local: dict[str, Subscriber] = {}
        # Subscription changes, applied in order by the subscriber task. Bounded by the
        # number of live actors, which their own supervisors bound.
        self._changes, self._changes_reader = trio.open_memory_channel[str](100_000)
        self._outbox, self._outbox_reader = trio.open_memory_channel[tuple[str, Event]](outbox_size)
        self._subscribed: set[str] = set()
        self._confirmed: dict[str, trio.Event] = {}
        self.connected = False
        self.dropped = 0
        self._up = trio.Event()
        self._down = trio.Event()

    # -- the Bus interface ---------------------------------------------------

    async def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        self._local[channel] = subscriber
        confirmed = self._confirmed.setdefault(channel, trio.Event())
        self._changes.send_nowait(channel)
        if self.connected:
            with trio.move_on_after(SUBSCRIBE_TIMEOUT):
                await confirmed.wait()

    def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        # ==, not is: a bound method is a new object at each access.
        if self._local.get(channel) == subscriber:
            del self._local[channel]
            self._confirmed.pop(channel, None)
            self._changes.send_nowait(channel)

    def publish(self, channel: str, event: Event) -> None:
        subscriber = self._local.get(channel)
        if subscriber is not None:
            subscriber(event)
        try:
            self._outbox.send_nowait((channel, event))
        except trio.WouldBlock:
            self.dropped += 1

    async def ready(self) -> bool:
        try:
            with trio.fail_after(PING_TIMEOUT):
                await self.client.ping()
        except REDIS_DOWN:
            return False
        return self.connected

    def channels(self) -> list[str]:
        return list(self._local)

    async def wait_connected(self) -> None:
        """Return once the pub/sub connection is up (at once if it is)."""
        await self._up.wait()

    async def wait_disconnected(self) -> None:
        """Return once the pub/sub connection is down (at once if it is)."""
        await self._down.wait()

    def _set_connected(self, connected: bool) -> None:
        self.connected = connected
        if connected:
            self._up.set()
            self._down = trio.Event()
        else:
            self._down.set()
            self._up = trio.Event()

    # -- running ---------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish and subscribe until cancelled; report started once (or if Redis is down
        at start, at once: the node serves its own users meanwhile)."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._publish_loop)
            nursery.start_soon(self._subscribe_loop)
            task_status.started()

    async def _subscribe_loop(self) -> None:
        backoff = 0.1
        first = True
        while True:
            try:
                async with self.client.pubsub(retry_policy=None) as pubsub:
                    await self._resubscribe_all(pubsub)
                    self._set_connected(True)
                    backoff = 0.1
                    log.info("redis bridge connected", extra={"fields": {"node": self.node_id}})
                    if not first and self.on_reconnect is not None:
                        await self.on_reconnect()
                    first = False
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._apply_changes, pubsub)
                        # Not ``async for``: that stops at once while nothing is subscribed.
                        while True:
                            message = await pubsub.get_message()
                            if message is not None and message["type"] == "message":
                                self._receive(message["channel"], message["data"])
            except* REDIS_DOWN as errors:
                if self.connected or first:
                    log.warning(
                        "redis bridge disconnected, retrying",
                        extra={"fields": {"error": repr(errors.exceptions[0])}},
                    )
                self._set_connected(False)
                self._subscribed.clear()
                first = False
            await trio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _resubscribe_all(self, pubsub: coredis.patterns.pubsub.PubSub) -> None:
        wanted = list(self._local)
        if wanted:
            with trio.fail_after(SUBSCRIBE_TIMEOUT * 5):
                await pubsub.subscribe(*[self.prefix + channel for channel in wanted])
        self._subscribed = set(wanted)
        for channel in wanted:
            self._confirm(channel)

    async def _apply_changes(self, pubsub: coredis.patterns.pubsub.PubSub) -> None:
        """Bring Redis subscriptions in line with the local subscribers, change by change."""
        async for channel in self._changes_reader:
            want = channel in self._local
            if want and channel not in self._subscribed:
                with trio.fail_after(SUBSCRIBE_TIMEOUT):
                    await pubsub.subscribe(self.prefix + channel)
                self._subscribed.add(channel)
            elif not want and channel in self._subscribed:
                with trio.fail_after(SUBSCRIBE_TIMEOUT):
                    await pubsub.unsubscribe(self.prefix + channel)
                self._subscribed.discard(channel)
            if want:
                self._confirm(channel)

    def _confirm(self, channel: str) -> None:
        event = self._confirmed.get(channel)
        if event is not None:
            event.set()

    def _receive(self, redis_channel: bytes, data: bytes) -> None:
        channel = redis_channel.decode()[len(self.prefix) :]
        try:
            event = decode_event(data)
        except ValueError:
            log.warning("undecodable bus event dropped", extra={"fields": {"channel": channel}})
            return
        if event.origin == self.node_id:
            return
        subscriber = self._local.get(channel)
        if subscriber is not None:
            subscriber(event)

    async def _publish_loop(self) -> None:
        outbox, origin = self._outbox_reader, self.node_id
        async for first in outbox:
            batch = [first]
            while len(batch) < PUBLISH_BATCH:
                try:
                    batch.append(outbox.receive_nowait())
                except trio.WouldBlock:
                    break
            try:
                with trio.fail_after(PUBLISH_TIMEOUT):
                    async with self.client.pipeline(transaction=False) as pipe:
                        for channel, event in batch:
                            pipe.publish(self.prefix + channel, encode_event(event, origin))
            except REDIS_DOWN:
                # Other nodes miss these live; storage has them, and serves them on reconnect.
                self.dropped += len(batch)
