"""The stream tail: every node delivers the stream in position order, from one place.

Storage hands out stream positions in commit order (docs/decisions/0004): whenever the
event at position p is visible, so is every event below p. The tail keeps ``position``,
the newest position it has dispatched, and dispatches each later event exactly once, in
position order, to this node's actors. So every user's connections on this node receive
their stream in position order, and the cursor on each frame (its own position) is a
place a resume can start from without skipping or repeating anything.

Events reach the tail two ways:

- In memory, from this node's own commits (``offer``): when they continue the stream
  where the tail is (the next positions), they are dispatched at once, without reading
  anything back. On one node that is every event.
- From storage (``stream_after``), when there is a hole before an offered event (another
  node committed in between), when another node says the stream moved (``wake``), and
  every ``poll_interval`` in any case: a lost wake-up delays an event, never loses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import trio

from hubbub.engine.chat.ports import STREAM_CHANNEL, Bus, Event
from hubbub.engine.chat.render import StreamRenderer
from hubbub.protocol.codec import encode_object
from hubbub.storage import Storage, StorageError, StreamEvent, StreamState

log = logging.getLogger("hubbub.engine")

#: Events read from storage per query.
READ_PAGE = 500
#: How long a hole before an offered event may wait to be filled by a local offer
#: (a commit of this node whose fan-out is a step behind) before storage is read.
HOLE_WAIT = 0.02
POLL_INTERVAL = 1.0
#: Offered events held while the tail cannot dispatch them, at most: past this the tail
#: drops them and reads storage instead (they are committed, storage has them).
MAX_HELD = 100_000

#: ``(event, frame, own_frame)``: hand one rendered event to this node's actors;
#: ``own_frame`` is the copy for the event's actor (it carries their ``client_id``).
Dispatch = Callable[[StreamEvent, bytes, "bytes | None"], None]
#: ``on_delivered(kind, seconds)``: a new message (``direct`` or ``group``) was dispatched
#: to this node's actors, ``seconds`` after its send was admitted.
Delivered = Callable[[str, float], None]
_KINDS = {"message": "direct", "group_message": "group"}


class StreamTail:
    """A supervised task of the node: reads the stream and dispatches it, in order."""

    name = "stream-tail"

    def __init__(
        self,
        storage: Storage,
        renderer: StreamRenderer,
        dispatch: Dispatch,
        *,
        bus: Bus,
        poll_interval: float = POLL_INTERVAL,
        on_delivered: Delivered | None = None,
    ) -> None:
        self.storage = storage
        self.on_delivered = on_delivered
        #: When each new message offered by this node was admitted (trio clock), by
        #: position, until it is dispatched: from memory or, past a hole, from storage.
        self._received: dict[int, tuple[float, str]] = {}
        self.bus = bus
        self.renderer = renderer
        self.dispatch = dispatch
        self.poll_interval = poll_interval
        #: Every event up to here has been dispatched. -1 until the tail has started.
        self.position = -1
        self.state = "starting"
        self._held: dict[int, tuple[StreamEvent, str | None]] = {}
        self._target = 0
        self._kick = trio.Event()
        self._started = trio.Event()

    @property
    def epoch(self) -> str:
        return self.renderer.epoch

    @property
    def running(self) -> bool:
        return self.position >= 0

    async def started(self) -> None:
        """Return once the tail knows where the stream is."""
        await self._started.wait()

    def offer(
        self,
        events: Sequence[StreamEvent],
        client_id: str | None = None,
        received: Sequence[float] | None = None,
    ) -> None:
        """Events this node just committed. ``client_id``: the request's, for the copies
        its requester receives. ``received``: for new messages, when each send was
        admitted (one per event), for ``on_delivered``."""
        if len(self._held) < MAX_HELD:
            for event in events:
                if event.position > self.position:
                    self._held[event.position] = (event, client_id)
            if received is not None and self.on_delivered is not None:
                for event, at in zip(events, received, strict=True):
                    if event.position > self.position:
                        kind = _KINDS.get(event.kind, event.kind)
                        self._received[event.position] = (at, kind)
        self._kick.set()

    def committed(
        self,
        events: Sequence[StreamEvent],
        client_id: str | None = None,
        received: Sequence[float] | None = None,
    ) -> None:
        """This node committed ``events``: dispatch them, and tell the other nodes."""
        if not events:
            return
        self.offer(events, client_id, received)
        head = max(event.position for event in events)
        self.bus.publish(STREAM_CHANNEL, Event("stream", str(head).encode()))

    def _heard(self, event: Event) -> None:
        try:
            self.wake(int(event.frame))
        except ValueError:
            self.poll_now()  # not a head (a resync notice, say): read storage

    def wake(self, head: int) -> None:
        """Another node committed up to ``head``."""
        if head > self._target:
            self._target = head
            self._kick.set()

    def poll_now(self) -> None:
        """Read storage at once (the shared bus was down: wake-ups may be lost)."""
        self._target = max(self._target, self.position + 1)
        self._kick.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self.position < 0:
            # A fresh node dispatches from the head on: sessions that attach catch up
            # (or resume) from storage themselves.
            state = await self._stream_state()
            self.renderer.epoch = state.epoch
            self.position = state.head
        self.state = "running"
        self._started.set()
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                # Subscribing is work after the start: a slow bus must not hold up the
                # supervisor, and until it answers the poll reads storage anyway.
                nursery.start_soon(self._listen)
                await self._follow()
        except BaseException:
            self.state = "crashed"
            raise

    async def _listen(self) -> None:
        await self.bus.subscribe(STREAM_CHANNEL, self._heard)
        self.poll_now()  # a head announced before the subscription was not heard

    async def _follow(self) -> None:
        while True:
            with trio.move_on_after(self.poll_interval) as waiting:
                await self._kick.wait()
            self._kick = trio.Event()
            await self._advance(polled=waiting.cancelled_caught)

    async def _stream_state(self) -> StreamState:
        while True:
            try:
                return await self.storage.stream_state()
            except StorageError as error:
                log.warning("stream state unavailable", extra={"fields": {"error": str(error)}})
                await trio.sleep(1.0)

    async def _advance(self, polled: bool) -> None:
        """Dispatch what continues the stream from memory; read storage for the rest
        (and, on a poll, in any case)."""
        await self._dispatch_held()
        if self._held:
            # A hole before held events: most often a local commit a step behind.
            with trio.move_on_after(HOLE_WAIT):
                while self._held and min(self._held) != self.position + 1:
                    self._kick = trio.Event()
                    await self._kick.wait()
            await self._dispatch_held()
        if self._held or self._target > self.position or polled:
            await self._read_storage()

    async def _dispatch_held(self) -> None:
        while self._held:
            run: list[StreamEvent] = []
            client_id: str | None = None
            next_position = self.position + 1
            while next_position in self._held:
                event, event_client_id = self._held.pop(next_position)
                if run and event_client_id != client_id:
                    self._held[next_position] = (event, event_client_id)
                    break
                client_id = event_client_id
                run.append(event)
                next_position += 1
            if not run:
                return
            await self._render_and_dispatch(run, client_id)

    async def _read_storage(self) -> None:
        while True:
            try:
                events = await self.storage.stream_after(self.position, READ_PAGE)
            except StorageError as error:
                log.warning("stream read failed", extra={"fields": {"error": str(error)}})
                return  # read again at the next kick or poll
            if events:
                # What storage has is the truth; a held copy may still carry a client_id.
                await self._render_and_dispatch(events, None)
            for position in [p for p in self._held if p <= self.position]:
                del self._held[position]
            if len(events) < READ_PAGE:
                self._target = 0 if self._target <= self.position else self._target
                await self._dispatch_held()
                return

    async def _render_and_dispatch(
        self, events: Sequence[StreamEvent], client_id: str | None
    ) -> None:
        try:
            rendered = await self.renderer.render(events)
            own = await self.renderer.render(events, client_id) if client_id else None
        except StorageError as error:
            # Names could not be looked up: try the same events again later, from storage.
            log.warning("stream render failed", extra={"fields": {"error": str(error)}})
            self._target = max(self._target, events[-1].position)
            return
        for index, (event, frame) in enumerate(zip(events, rendered, strict=True)):
            if event.position <= self.position:
                continue
            own_frame = encode_object(own[index]) if own is not None else None
            try:
                self.dispatch(event, encode_object(frame), own_frame)
            except Exception:
                log.exception("stream dispatch failed", extra={"fields": {"kind": event.kind}})
            self.position = event.position
        if self._received and self.on_delivered is not None:
            self._delivered(self.on_delivered)

    def _delivered(self, on_delivered: Delivered) -> None:
        """Observe the offered messages now dispatched (at one clock reading), and so
        forget every timing the stream has moved past."""
        now = trio.current_time()
        for position in [p for p in self._received if p <= self.position]:
            at, kind = self._received.pop(position)
            on_delivered(kind, now - at)

    def snapshot(self) -> dict[str, object]:
        return {
            "name": self.name,
            "state": self.state,
            "restarts": 0,
            "mailbox_depth": len(self._held),
            "children": [],
        }
