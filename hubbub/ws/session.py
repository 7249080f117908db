"""A session: one authenticated WebSocket connection of a user (one device).

One task of its own, the reader (decode, then hand each frame to the chat handler in
order). Writing needs none while the socket keeps up: actors ``push`` frames without
ever waiting, onto the connection's bounded queue, and the node's ``SocketFlusher``
writes them; only a socket that fills up gets a writer task until it drains. The node's
one ``Keepalive`` watches every session. The bound is what keeps one slow client from
slowing anyone else: a full queue closes the connection with 1013; the client reconnects
and catches up from storage.
"""

from __future__ import annotations

import itertools
import logging
from typing import Protocol

import attrs
import trio

from hubbub.config import Settings
from hubbub.metrics import Metrics
from hubbub.protocol import ClientFrame, ProtocolError, decode_client_frame, encode
from hubbub.protocol.frames import ErrorOut, Ping, Pong
from hubbub.ws.connection import BinaryMessage, ConnectionClosed, WebSocketConnection
from hubbub.ws.flusher import SocketFlusher
from hubbub.ws.frames import PING_FRAME

log = logging.getLogger("hubbub.ws")

#: How long a send may wait for a slot among the connection's unacked sends.
ACK_WAIT = 30.0
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
#: RFC 6455: a data type the endpoint cannot accept (here: binary).
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_LATER = 1013

_ids = itertools.count(1)


class FrameHandler(Protocol):
    """What a session hands its life to: the node's chat dispatcher."""

    async def session_opened(self, session: Session) -> None:
        """Called once the writer runs; offline catch-up happens here."""

    async def handle_frame(self, session: Session, frame: ClientFrame) -> None:
        """Called for each valid frame other than ``ping``, in the order received."""

    def frames_written(self, session: Session, message_ids: list[int]) -> None:
        """Frames that deliver these direct messages were written to the socket."""

    async def session_closed(self, session: Session) -> None:
        """Called once, whatever ended the session."""


def unacked_slots(settings: Settings) -> int:
    """How many of a connection's sends may await their ack at once.

    Each send in flight comes back as an ack plus an echo: bounding the unacked sends
    keeps a fast pipelining client from overflowing its own queue. The reader waits
    instead, and TCP slows the client down."""
    return max(1, settings.outbound_queue // 4)


@attrs.define(eq=False, repr=False)
class Session:
    """An authenticated connection of ``user_id``. Create it, then ``await run()``."""

    connection: WebSocketConnection
    user_id: int
    username: str
    #: When the access token the connection opened with expires (trio clock): the
    #: node's Keepalive closes the session then (1008).
    _token_expires_at: float = attrs.field(kw_only=True, alias="token_expires_at")
    settings: Settings = attrs.field(kw_only=True)
    metrics: Metrics = attrs.field(kw_only=True)
    handler: FrameHandler = attrs.field(kw_only=True)
    #: ``?since=`` of the upgrade: None (v1), ``"now"`` or a cursor (see engine.chat.resume).
    since: str | None = attrs.field(kw_only=True, default=None)
    flusher: SocketFlusher = attrs.field(kw_only=True)
    id: int = attrs.field(init=False, factory=lambda: next(_ids))
    #: The direct messages of queued frames, each with its frame's number in the
    #: connection's sequence. A message counts as delivered only once its frame is
    #: written, so whatever is unwritten when the connection closes stays pending and
    #: comes again on the next connect.
    _delivers: list[tuple[int, int]] = attrs.field(init=False, factory=list)
    #: Waiting for the flusher or a writer task: no need to ask again.
    _due: bool = attrs.field(init=False, default=False)
    #: Open until ``run`` ends; pushes are refused after.
    _open: bool = attrs.field(init=False, default=True)
    #: Set on each write while a task waits (``flushed``, a ``send`` waiting for room).
    _progress: trio.Event | None = attrs.field(init=False, default=None)
    #: ``connection.written`` when the frames-out counter was last raised.
    _counted: int = attrs.field(init=False, default=0)
    #: Sends handed on and not yet answered (at most ``unacked_slots``); a reader
    #: waiting for a slot waits on ``_slot_freed``. Plain fields, not a Semaphore:
    #: an idle connection should cost little.
    _unacked: int = attrs.field(init=False, default=0)
    _slot_freed: trio.Event | None = attrs.field(init=False, default=None)
    _scope: trio.CancelScope = attrs.field(init=False, factory=trio.CancelScope)
    _answered: trio.Event | None = attrs.field(init=False, default=None)
    #: Set to stop reading frames (a node that drains); what was read goes on.
    _draining: bool = attrs.field(init=False, default=False)
    #: A frame is being handled (between its read and its hand-off or answer).
    _handling: bool = attrs.field(init=False, default=False)
    _writing_since: float | None = attrs.field(init=False, default=None)
    _close_code: int = attrs.field(init=False, default=CLOSE_NORMAL)
    _close_reason: str = attrs.field(init=False, default="")

    def __repr__(self) -> str:
        return f"<Session {self.id} user={self.user_id}>"

    # -- sending (called by actors; never blocks) -----------------------

    def push(self, payload: bytes, delivers: int | None = None) -> bool:
        """Queue an encoded frame. A full queue closes the session (1013): returns False.

        ``delivers``: the direct message the frame delivers; the handler hears of it
        through ``frames_written`` once the frame is on the socket."""
        connection = self.connection
        if not (self._open and connection.is_open):
            return False
        if connection.queued - connection.written >= self.settings.outbound_queue:
            self._close_slow("queue_full")
            return False
        self._queue(self.flusher.frames.frame(payload), delivers)
        return True

    async def send(self, payload: bytes) -> bool:
        """Queue an encoded frame, waiting for room (catch-up paces itself with this).

        Returns False if the session is gone. Gives up and closes the session (1013) if
        the client does not drain its queue within the keepalive timeout."""
        limit = self.settings.outbound_queue
        if self.connection.unsent >= limit:
            try:
                with trio.fail_after(self.settings.ping_timeout):
                    while self.connection.unsent >= limit and self._open:
                        if self._scope.cancel_called:
                            return False
                        await self._wait_progress()
            except trio.TooSlowError:
                self._close_slow("queue_full")
                return False
        return self.push(payload)

    def _queue(self, frame: bytes, delivers: int | None = None) -> None:
        number = self.connection.queue(frame)
        if delivers is not None:
            self._delivers.append((number, delivers))
        if not self._due:
            self._due = True
            if not self.flusher.schedule(self):
                self._start_writer()

    def write_due(self) -> None:
        """Write what is queued, as far as the socket takes it now (the flusher's call);
        a socket that is full gets a writer task until it drains. Never raises."""
        self._due = False
        if not self._open:
            return
        try:
            done = self.connection.write_nowait()
        except ConnectionClosed:
            self.close_soon(CLOSE_GOING_AWAY, "connection lost")
            return
        self._wrote()
        if not done:
            self._due = True
            self._start_writer()

    def _start_writer(self) -> None:
        if not (self._open and self.flusher.start_writer(self._write_until_drained)):
            self._due = False  # closing, or no flusher to run a writer: nothing to write with

    async def _write_until_drained(self) -> None:
        self._writing_since = trio.current_time()
        try:
            # No timeout here (a scope per write is costly): the node's Keepalive
            # closes a session whose write is stuck.
            await self.connection.drain()
        except ConnectionClosed:
            self.close_soon(CLOSE_GOING_AWAY, "connection lost")
        finally:
            self._writing_since = None
            self._due = False
        self._wrote()

    def _wrote(self) -> None:
        """Account for what the socket took: delivery marks, waiters, the counter."""
        written = self.connection.written
        delivers = self._delivers
        if delivers and delivers[0][0] <= written:
            done = 0
            for number, _ in delivers:
                if number > written:
                    break
                done += 1
            ids = [message_id for _, message_id in delivers[:done]]
            del delivers[:done]
            self.handler.frames_written(self, ids)
        if self._progress is not None:
            self._progress.set()
            self._progress = None
        if written > self._counted:
            self.metrics.frames_out.inc(written - self._counted)
            self._counted = written

    async def _wait_progress(self) -> None:
        if self._progress is None:
            self._progress = trio.Event()
        await self._progress.wait()

    async def flushed(self) -> bool:
        """Wait until every frame queued so far is written to the socket.

        False if the session closed first, or (closing it, 1013) if the client does not
        read them within the keepalive timeout."""
        target = self.connection.queued
        try:
            with trio.fail_after(self.settings.ping_timeout):
                while self.connection.written < target:
                    if self._scope.cancel_called or not self._open:
                        return False
                    await self._wait_progress()
        except trio.TooSlowError:
            self._close_slow("not_reading")
            return False
        return not self._scope.cancel_called

    def refuse(self, reason: str, client_id: str | None = None) -> None:
        """Answer a refused frame with an ``error`` frame; logged once."""
        self.metrics.errors.labels(reason).inc()
        log.info(
            "frame refused",
            extra={"fields": {"user_id": self.user_id, "session": self.id, "reason": reason}},
        )
        self.push(encode(ErrorOut(reason, client_id)))

    async def reserve_send(self) -> bool:
        """Take one of this connection's slots for a send awaiting its ack, waiting while
        all are taken. False (and the session closes, 1011) if none frees up within
        ``ACK_WAIT``: the writer is that far behind (a database slow enough that several
        batches each took up to ``HUBBUB_DATABASE_TIMEOUT``); the client reconnects."""
        slots = unacked_slots(self.settings)
        # A free slot, the common case: no timeout scope to set up per send.
        if self._unacked < slots:
            self._unacked += 1
            return True
        try:
            with trio.fail_after(ACK_WAIT):
                while self._unacked >= slots:
                    if self._slot_freed is None:
                        self._slot_freed = trio.Event()
                    await self._slot_freed.wait()
        except trio.TooSlowError:
            self.close_soon(CLOSE_INTERNAL, "server busy, please reconnect")
            return False
        self._unacked += 1
        return True

    def settle_send(self) -> None:
        """The send holding a slot was acked or refused."""
        if self._unacked > 0:  # never below zero: a slot lost to a writer restart
            self._unacked -= 1
        if self._slot_freed is not None:
            self._slot_freed.set()
            self._slot_freed = None
        if self._draining:
            self._wake_settled()

    def _wake_settled(self) -> None:
        if self._answered is not None:
            self._answered.set()

    def _refuse_connection(self, code: int, reason: str) -> None:
        """Close for something the client did, counted and logged like a refused frame."""
        self.metrics.errors.labels(reason).inc()
        log.info(
            "connection refused",
            extra={"fields": {"user_id": self.user_id, "session": self.id, "reason": reason}},
        )
        self.close_soon(code, reason)

    def writing_since(self) -> float | None:
        """When the write in progress started, or None between writes."""
        return self._writing_since

    def close_slow(self) -> None:
        """Close as a slow consumer (1013), counted once: the keepalive found a socket
        write stuck past the ping timeout."""
        self._close_slow("write_stuck")

    def _close_slow(self, reason: str) -> None:
        """``reason``: one of ``metrics.SLOW_CONSUMER_REASONS``, for the counter."""
        if not self._scope.cancel_called:
            self.metrics.slow_consumers.labels(reason).inc()
            self.close_soon(CLOSE_TRY_LATER, "slow consumer")

    def last_heard(self) -> float:
        return self.connection.last_heard

    def token_expires_at(self) -> float:
        return self._token_expires_at

    def ping_soon(self) -> None:
        """Send a ping soon (the keepalive's request); a full queue skips it (the
        keepalive closes a session stuck that long anyway)."""
        if self._open and self.connection.unsent < self.settings.outbound_queue:
            self._queue(PING_FRAME)

    def stop_reading(self) -> None:
        """Take no more frames from the client (the node drains): frames already read
        are still handled and answered, any read after this is left unanswered (the
        client resends it after reconnecting); the session stays open until
        ``close_soon``."""
        self._draining = True

    @property
    def settled(self) -> bool:
        """True when no frame read from this session is waiting for its answer: none is
        being handled, and none handed to storage is unacked."""
        return not self._handling and self._unacked == 0

    async def wait_settled(self) -> None:
        """Return once every send of this session has been answered."""
        while not self.settled:
            self._answered = trio.Event()
            await self._answered.wait()
        self._answered = None

    def close_soon(self, code: int, reason: str) -> None:
        """Ask the session to close with ``code``. Safe from any task; the first code wins."""
        if not self._scope.cancel_called:
            self._close_code, self._close_reason = code, reason
            self._open = False  # nothing more is queued
            self._scope.cancel()
            if self._progress is not None:
                self._progress.set()  # wake a ``flushed`` waiter: it answers False
                self._progress = None

    # -- running ---------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until either side closes it. Never raises."""
        self.metrics.connections.inc()
        self.metrics.connections_total.inc()
        log.info(
            "connection opened", extra={"fields": {"user_id": self.user_id, "session": self.id}}
        )
        try:
            with self._scope:
                await self.handler.session_opened(self)
                await self._read_loop()
        except Exception:
            log.exception("session crashed", extra={"fields": {"user_id": self.user_id}})
            self._close_code, self._close_reason = CLOSE_INTERNAL, "internal error"
        finally:
            self._open = False
            # Unwritten frames are not sent after all: their messages stay pending.
            self.connection.discard_unsent()
            with trio.move_on_after(5) as cleanup:
                cleanup.shield = True
                try:
                    await self.handler.session_closed(self)
                except Exception:
                    log.exception("session close hook failed")
            await self.connection.close(self._close_code, self._close_reason)
            self.metrics.connections.dec()
            log.info(
                "connection closed",
                extra={
                    "fields": {
                        "user_id": self.user_id,
                        "session": self.id,
                        "code": self._close_code,
                        "reason": self._close_reason,
                    }
                },
            )

    async def _read_loop(self) -> None:
        max_length = self.settings.max_message_length
        while True:
            data = None
            if not self._draining:
                try:
                    data = await self.connection.receive_text()
                except BinaryMessage:
                    self._refuse_connection(
                        CLOSE_UNSUPPORTED_DATA, "binary frames are not supported"
                    )
                    return
            if self._draining:
                await trio.sleep_forever()  # the node closes the session once answered
            if data is None:
                code = self.connection.frames.peer_code
                if code is not None and code != CLOSE_NORMAL:
                    self._close_code, self._close_reason = code, "closed by peer"
                return
            self.metrics.frames_in.inc()
            try:
                frame = decode_client_frame(data, max_text_length=max_length)
            except ProtocolError as error:
                self.refuse(error.reason, error.client_id)
                continue
            if isinstance(frame, Ping):
                self.push(encode(Pong()))
            else:
                self._handling = True
                try:
                    await self.handler.handle_frame(self, frame)
                finally:
                    self._handling = False
                    if self._draining:
                        self._wake_settled()
