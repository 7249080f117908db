"""The RedisBridge: the bus across nodes, on Redis pub/sub.

A node subscribes in Redis only to the channels of the users and groups live on it, and
unsubscribes when their actor stops, so traffic goes only where it is needed. An event
is delivered to the local subscriber at once and published to Redis for the other nodes;
each event carries its origin node, so a node skips its own echo: delivery never doubles
and never skips a device connected elsewhere.

Subscription changes never queue. ``subscribe`` and ``unsubscribe`` mark the channel
*dirty* (a set: however often a channel churns, it is one entry), and one task brings
Redis in line with the local subscribers, oldest mark first, while the pub/sub connection
is up. While it is down nothing is recorded at all: the next connection subscribes to
whatever is local by then. Neither call ever raises for lack of room.

Redis going away is survivable. The subscriber reconnects with a jittered back-off (so
the nodes do not all come back at the same instants) and resubscribes. A publish that
fails, times out or finds the outbox full is dropped (the message is in storage) and
counted (``on_dropped``), and the loss is announced once Redis answers again.

The repair hook: ``on_resync(channels)``
-----------------------------------------

Storage holds every message; the bus only carries them live. When events on this node's
channels may have been missed, the bridge awaits ``on_resync`` so that the node fetches
from storage what its subscribers missed. It promises:

1. **After every pub/sub reconnection**: Redis restarted, the connection was killed
   (``CLIENT KILL TYPE pubsub``), a network error, or the bridge task restarted by its
   supervisor; not after a bridge's very first connection. It awaits ``on_resync(None)``
   (any channel may have missed events) exactly once, after Redis has confirmed the
   subscription of every channel local at that moment and *before* any event arriving on
   the new connection is handed to a subscriber: those wait, in order, in the
   connection's buffer, and are delivered when the hook returns. So every event is either
   delivered live, or was published before the hook was called.
2. **After another node lost publishes.** Once that node's Redis answers again, it
   announces the channels it lost events on, once per recovery however many events, and
   ahead of anything it publishes afterwards. Each node holding some of those channels
   awaits ``on_resync(those of them it holds)`` once, at that point of its event stream:
   after every event that node got to Redis before the loss, before every one after.
   Past ``LOST_CHANNELS_MAX`` distinct channels the announcement says "everything" and
   the holders await ``on_resync(None)``.
3. The publishing node itself is never resynced for its own losses: its subscribers got
   the event in-process, before Redis was tried.

Hence a subscriber that, when the hook names its channel (or ``None``), queues "fetch
what came after the last event I delivered" ahead of its next live event misses nothing
the bus was asked to carry. Two limits: a node that dies before its Redis answers again
never announces its losses (their recipients get those messages from storage when they
next connect); and one outage may resync a channel twice (a reconnection here and a
peer's announcement), so what the hook starts must be idempotent.

On a Redis Cluster (``redis_client.is_cluster``) every channel is *sharded*: published
with ``SPUBLISH`` and heard with ``SSUBSCRIBE``, so an event travels only to the shard
that owns its channel's slot and to the nodes subscribed there, instead of being
broadcast over the cluster bus to every Redis node. The node-wide channels (``stream``,
the loss announcements) are sharded too, each on the slot of its own name: every node
subscribes to them, so they cost one shard what they cost a single Redis. One promise
weakens there: events on different channels travel over different shards, so a loss
announcement is ordered only with the events of channels on its own shard; a channel on
another shard may deliver a post-loss event before the announcement arrives (the resync
still comes, a little late).

The hook should only enqueue work: delivery waits while it runs. If it raises, that is
logged and delivery goes on. ``on_resynced(cause)`` counts each call (``"reconnect"`` or
``"lost"``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import trio
from coredis.patterns.pubsub import BasePubSub

from hubbub.engine.chat.ports import Bus, Event, Subscriber
from hubbub.engine.cluster.redis_client import RedisClient, is_cluster
from hubbub.engine.cluster.redis_guard import REDIS_DOWN, jittered

log = logging.getLogger("hubbub.engine")

SUBSCRIBE_TIMEOUT = 2.0
PUBLISH_TIMEOUT = 2.0
PING_TIMEOUT = 1.0
PUBLISH_BATCH = 512
#: Channels per SUBSCRIBE or UNSUBSCRIBE command: bounds each command and its wait.
SUBSCRIBE_BATCH = 512
MIN_BACKOFF = 0.1
MAX_BACKOFF = 5.0
#: Distinct channels one loss announcement lists; past it, it says "everything".
LOST_CHANNELS_MAX = 1000
#: Where (under the prefix) every bridge hears other nodes' loss announcements.
LOST_CHANNEL = "bridge:lost"
_EVERYTHING = b"*"

#: ``on_resync(channels)``: events on ``channels`` (``None``: on any channel) may have
#: been missed here.
ResyncHook = Callable[[frozenset[str] | None], Awaitable[None]]

PubSub = BasePubSub[bytes, Any]


def encode_event(event: Event, origin: str) -> bytes:
    """``origin|kind|message_id|actor_id|frame``: a header the receiving node reads, then
    the frame."""
    message_id = b"" if event.message_id is None else str(event.message_id).encode()
    actor_id = b"" if event.actor_id is None else str(event.actor_id).encode()
    return b"|".join((origin.encode(), event.kind.encode(), message_id, actor_id, event.frame))


def decode_event(data: bytes) -> Event:
    origin, kind, message_id, actor_id, frame = data.split(b"|", 4)
    return Event(
        kind.decode(),
        frame,
        int(message_id) if message_id else None,
        origin.decode(),
        actor_id=int(actor_id) if actor_id else None,
    )


class RedisBridge(Bus):
    """A ``Bus`` shared by every node on one Redis. Run ``run()`` under a supervisor.

    Memory is bounded: the outbox by ``outbox_size`` events; subscription bookkeeping by
    the local channels plus the distinct channels changed during one reconciliation round
    (nothing at all while disconnected); the record of lost channels by
    ``LOST_CHANNELS_MAX``. One buffer is coredis's: it reads pub/sub messages off the
    socket into a queue of its own, without bound; delivery drains it without blocking,
    except while the resync hook runs (hence: keep the hook short).
    """

    def __init__(
        self,
        client: RedisClient,
        node_id: str,
        *,
        prefix: str = "hubbub:",
        on_resync: ResyncHook | None = None,
        on_dropped: Callable[[int], None] | None = None,
        on_resynced: Callable[[str], None] | None = None,
        outbox_size: int = 65536,
        publish_timeout: float = PUBLISH_TIMEOUT,
    ) -> None:
        self.client = client
        self.node_id = node_id
        self.prefix = prefix
        #: On a Redis Cluster: SPUBLISH and SSUBSCRIBE (see the module's docstring).
        self.sharded = is_cluster(client)
        self.on_resync = on_resync
        self.publish_timeout = publish_timeout
        self._on_dropped = on_dropped
        self._on_resynced = on_resynced
        self._local: dict[str, Subscriber] = {}
        # Channels whose Redis subscription may differ from _local, oldest first (a dict
        # as an ordered set). Recorded only while _tracking: from the snapshot a
        # connection subscribes from, until that connection is gone.
        self._dirty: dict[str, None] = {}
        self._tracking = False
        self._dirty_marked = trio.Event()
        self._subscribed: set[str] = set()
        self._confirmed: dict[str, trio.Event] = {}
        self._outbox, self._outbox_reader = trio.open_memory_channel[tuple[str, Event]](outbox_size)
        # Channels with events that never reached Redis, not announced yet; or everything.
        self._lost: set[str] = set()
        self._lost_everything = False
        self._losing = False
        # Whether a connection was lost (or never made) since the last resync.
        self._missed = False
        self._notice_channel = prefix + LOST_CHANNEL
        self._notice_key = self._notice_channel.encode()
        self.connected = False
        #: Events that did not reach Redis, ever.
        self.dropped = 0
        #: Calls of the resync hook, ever.
        self.resyncs = 0
        self._up = trio.Event()
        self._down = trio.Event()

    # -- the Bus interface ---------------------------------------------------

    async def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        """While connected, returns once Redis confirmed this subscription and every
        subscription change made before it (or after ``SUBSCRIBE_TIMEOUT``); otherwise at
        once: the next connection subscribes to it."""
        self._local[channel] = subscriber
        confirmed = self._confirmed.setdefault(channel, trio.Event())
        self._mark(channel)
        if self.connected:
            with trio.move_on_after(SUBSCRIBE_TIMEOUT):
                await confirmed.wait()

    def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        # ==, not is: a bound method is a new object at each access.
        if self._local.get(channel) == subscriber:
            del self._local[channel]
            self._confirmed.pop(channel, None)
            self._mark(channel)

    def publish(self, channel: str, event: Event) -> None:
        subscriber = self._local.get(channel)
        if subscriber is not None:
            subscriber(event)
        try:
            self._outbox.send_nowait((channel, event))
        except trio.WouldBlock:
            self._lose((channel,), 1)

    async def ready(self) -> bool:
        try:
            with trio.fail_after(PING_TIMEOUT):
                await self.client.ping()
        except REDIS_DOWN:
            return False
        return self.connected

    def channels(self) -> list[str]:
        return list(self._local)

    @property
    def pending_changes(self) -> int:
        """Channels whose Redis subscription is yet to be brought in line (at most the
        number of distinct channels changed since the last reconciliation)."""
        return len(self._dirty)

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
        backoff = MIN_BACKOFF
        while True:
            try:
                async with self._open_pubsub() as pubsub:
                    await self._resubscribe_all(pubsub)
                    self._set_connected(True)
                    backoff = MIN_BACKOFF
                    log.info("redis bridge connected", extra={"fields": {"node": self.node_id}})
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._reconcile, pubsub)
                        if self._missed:
                            self._missed = False
                            # Before the first read: what arrives meanwhile waits for it.
                            await self._resync(None, "reconnect")
                        await self._deliver(pubsub)
            except* REDIS_DOWN as errors:
                if self.connected or not self._missed:  # once per outage
                    log.warning(
                        "redis bridge disconnected, retrying",
                        extra={"fields": {"error": repr(errors.exceptions[0])}},
                    )
            finally:
                # Also when cancelled (a restart by the supervisor): the next connection,
                # whoever makes it, starts from scratch and resyncs.
                self._disconnected()
            await trio.sleep(jittered(backoff))
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _open_pubsub(self) -> PubSub:
        """A pub/sub connection that fails instead of retrying: the loop above retries,
        resubscribes and resyncs itself."""
        if self.sharded:
            return self.client.sharded_pubsub(  # type: ignore[union-attr]
                retry_policy=None, subscription_timeout=SUBSCRIBE_TIMEOUT
            )
        return self.client.pubsub(retry_policy=None, subscription_timeout=SUBSCRIBE_TIMEOUT)

    def _disconnected(self) -> None:
        self._set_connected(False)
        self._tracking = False
        self._dirty.clear()
        self._subscribed.clear()
        self._missed = True

    async def _resubscribe_all(self, pubsub: PubSub) -> None:
        # Snapshot and start recording together (no checkpoint between): every change
        # after the snapshot is marked dirty, every change before it is in the snapshot.
        wanted = list(self._local)
        self._dirty.clear()
        self._tracking = True
        redis_channels = [self._notice_channel, *(self.prefix + channel for channel in wanted)]
        for start in range(0, len(redis_channels), SUBSCRIBE_BATCH):
            await pubsub.subscribe(*redis_channels[start : start + SUBSCRIBE_BATCH])
        self._subscribed = set(wanted)
        for channel in wanted:
            self._confirm(channel)

    def _mark(self, channel: str) -> None:
        if self._tracking:
            self._dirty[channel] = None
            self._dirty_marked.set()

    async def _reconcile(self, pubsub: PubSub) -> None:
        """Bring Redis's subscriptions in line with the local subscribers, dirty channel
        by dirty channel, oldest first, a batch per command."""
        while True:
            if not self._dirty:
                self._dirty_marked = trio.Event()
                await self._dirty_marked.wait()
                continue
            # Marks made while this round runs land in the new dict, for the next round.
            pending, self._dirty = list(self._dirty), {}
            for start in range(0, len(pending), SUBSCRIBE_BATCH):
                batch = pending[start : start + SUBSCRIBE_BATCH]
                # Judged per batch, not per mark: a channel that came and went while it
                # waited costs nothing.
                add = [c for c in batch if c in self._local and c not in self._subscribed]
                drop = [c for c in batch if c not in self._local and c in self._subscribed]
                if add:
                    await pubsub.subscribe(*(self.prefix + channel for channel in add))
                    self._subscribed.update(add)
                if drop:
                    await pubsub.unsubscribe(*(self.prefix + channel for channel in drop))
                    self._subscribed.difference_update(drop)
                for channel in batch:
                    self._confirm(channel)

    def _confirm(self, channel: str) -> None:
        event = self._confirmed.get(channel)
        if event is not None:
            event.set()

    async def _deliver(self, pubsub: PubSub) -> None:
        # Not ``async for``: that stops at once while nothing is subscribed.
        while True:
            message = await pubsub.get_message()
            if message is None or message["type"] != "message":
                continue
            channel, data = message["channel"], message["data"]
            assert isinstance(channel, bytes) and isinstance(data, bytes)  # decode_responses off
            if channel == self._notice_key:
                await self._heard_loss(data)
            else:
                self._receive(channel, data)

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

    async def _heard_loss(self, data: bytes) -> None:
        """Another node's announcement: events it published on these channels were lost."""
        try:
            notice = decode_event(data)
        except ValueError:
            log.warning("undecodable loss announcement ignored")
            return
        if notice.origin == self.node_id or not self._local:
            return
        if notice.frame == _EVERYTHING:
            await self._resync(None, "lost")
            return
        held = frozenset(c for c in notice.frame.decode().split("\n") if c in self._local)
        if held:
            await self._resync(held, "lost")

    async def _resync(self, channels: frozenset[str] | None, cause: str) -> None:
        self.resyncs += 1
        if self._on_resynced is not None:
            self._on_resynced(cause)
        log.info(
            "bus resync",
            extra={
                "fields": {"cause": cause, "channels": "all" if channels is None else len(channels)}
            },
        )
        if self.on_resync is None:
            return
        try:
            await self.on_resync(channels)
        except Exception:
            # Delivering what still arrives matters more than one failed repair.
            log.exception("bus resync hook failed", extra={"fields": {"cause": cause}})

    # -- publishing --------------------------------------------------------------

    def _lose(self, channels: Iterable[str], count: int) -> None:
        """Record that events on ``channels`` (``count`` of them) never reached Redis."""
        if not self._losing:
            self._losing = True
            log.warning("bus events not reaching redis; announcing the loss once it answers")
        self._note_lost(channels)
        if count:
            self.dropped += count
            if self._on_dropped is not None:
                self._on_dropped(count)

    def _note_lost(self, channels: Iterable[str], everything: bool = False) -> None:
        if self._lost_everything or everything:
            self._lost_everything, self._lost = True, set()
            return
        self._lost.update(channels)
        if len(self._lost) > LOST_CHANNELS_MAX:
            self._lost_everything, self._lost = True, set()

    def _take_notice(self) -> tuple[bytes | None, set[str], bool]:
        """The loss announcement to publish ahead of the next batch, if any, and what it
        covers (to put back if it fails)."""
        lost, everything = self._lost, self._lost_everything
        self._lost, self._lost_everything = set(), False
        if everything:
            frame = _EVERYTHING
        elif lost:
            frame = "\n".join(sorted(lost)).encode()
        else:
            return None, lost, everything
        return encode_event(Event("lost", frame), self.node_id), lost, everything

    async def _publish_loop(self) -> None:
        outbox, origin = self._outbox_reader, self.node_id
        retry = MIN_BACKOFF
        while True:
            batch: list[tuple[str, Event]] = []
            if self._lost or self._lost_everything:
                # A loss to announce even if nothing more is published: try again soon.
                with trio.move_on_after(jittered(retry)):
                    batch.append(await outbox.receive())
            else:
                batch.append(await outbox.receive())
            while len(batch) < PUBLISH_BATCH:
                try:
                    batch.append(outbox.receive_nowait())
                except trio.WouldBlock:
                    break
            notice, announced, everything = self._take_notice()
            try:
                with trio.fail_after(self.publish_timeout):
                    async with self.client.pipeline(transaction=False) as pipe:
                        publish = pipe.spublish if self.sharded else pipe.publish
                        # First: on one connection, in order, so that every node hears of
                        # the loss before any event published after it (on a cluster:
                        # after those on its shard).
                        if notice is not None:
                            publish(self._notice_channel, notice)
                        for channel, event in batch:
                            publish(self.prefix + channel, encode_event(event, origin))
            except REDIS_DOWN:
                # Other nodes miss these live; storage has them, and the announcement,
                # once it gets through, has those nodes fetch them.
                self._note_lost(announced, everything)
                self._lose([channel for channel, _ in batch], len(batch))
                retry = min(retry * 2, MAX_BACKOFF)
            else:
                retry = MIN_BACKOFF
                if notice is not None:
                    log.info(
                        "bus loss announced",
                        extra={"fields": {"channels": "all" if everything else len(announced)}},
                    )
                    if not (self._lost or self._lost_everything):
                        self._losing = False
