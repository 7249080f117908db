"""A WebSocket connection: the ``websockets`` Sans-I/O protocol driven over a Trio stream.

This module only moves bytes and frames; it knows nothing of chat. Reading is the
protocol's (one reader task). Writing is ours: everything bound for the socket, data
frames framed by ``frames.text_frame`` and whatever the protocol itself queues (pongs,
the close handshake), goes through one queue of byte strings, in order. ``write_nowait``
writes what the socket takes without waiting, so a caller with many connections to
serve writes them all from one task; ``drain`` waits for a socket that is full.
"""

from __future__ import annotations

import logging
import os

import trio
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

log = logging.getLogger("hubbub.ws")

RECEIVE_SIZE = 65536


class ConnectionClosed(Exception):
    """The peer closed the connection or it broke; stop using it."""


class BinaryMessage(Exception):
    """The peer sent a binary message: the chat protocol is JSON in text frames only."""


class WebSocketConnection:
    """One accepted or accepting WebSocket over ``stream``."""

    def __init__(self, stream: trio.SocketStream, protocol: ServerProtocol) -> None:
        self.stream = stream
        self.protocol = protocol
        #: Held while a task waits for the socket to take more; one waiter at a time.
        self._send_lock: trio.Lock | None = None  # made when first needed
        self._fd = stream.socket.fileno()
        #: Byte strings queued for the socket; the first may be partly written already.
        self._out: list[bytes] = []
        self._head_sent = 0
        #: Items queued and items wholly written since the connection opened.
        self.queued = 0
        self.written = 0
        self._closed = False
        #: Data frames may still be sent: no close frame sent or received. A plain field
        #: (checked on every push), kept in step wherever the protocol's state can move.
        self.is_open = True
        self._fragments: list[bytes] = []
        # A list, not a deque: an empty deque costs ~0.6 KiB, per idle connection.
        self._pending: list[Frame] = []
        #: When the peer last sent anything (trio clock), for the keepalive.
        self.last_heard = trio.current_time()

    async def read_request(self, already_read: bytes, timeout: float) -> Request | None:
        """Parse the upgrade request from what the front door read (and more if needed)."""
        self.protocol.receive_data(already_read)
        with trio.move_on_after(timeout):
            while True:
                events = self.protocol.events_received()
                for index, event in enumerate(events):
                    if isinstance(event, Request):
                        # Frames sent with the request (clients must wait, some don't).
                        self._pending.extend(e for e in events[index + 1 :] if isinstance(e, Frame))
                        return event
                if self.protocol.handshake_exc is not None:
                    await self.flush()
                    return None
                data = await self.stream.receive_some(RECEIVE_SIZE)
                if not data:
                    return None
                self.protocol.receive_data(data)
        return None

    def queue(self, data: bytes) -> int:
        """Queue ``data`` (whole frames) for the socket; returns its number in the
        connection's sequence, which ``written`` reaches once it is all on the socket."""
        self._out.append(data)
        self.queued += 1
        return self.queued

    @property
    def unsent(self) -> int:
        """Items queued and not yet wholly written."""
        return self.queued - self.written

    def write_nowait(self) -> bool:
        """Write as much of the queue as the socket takes now; True once none is left.

        Never waits (a full socket takes nothing). Raises ConnectionClosed if the peer
        is gone."""
        out = self._out
        if not out:
            return True
        if self._closed:
            raise ConnectionClosed("connection is closed")
        head = memoryview(out[0])[self._head_sent :] if self._head_sent else out[0]
        # One system call for everything queued: the join copies, but a syscall per
        # frame costs far more.
        data = head if len(out) == 1 else b"".join([head, *out[1:]])
        try:
            sent = os.write(self._fd, data)
        except BlockingIOError:
            return False
        except OSError as error:
            raise ConnectionClosed(str(error)) from None
        if sent == len(data):
            self.written += len(out)
            out.clear()
            self._head_sent = 0
            return True
        # Drop what went out whole; remember how much of the new head did.
        sent += self._head_sent
        done = 0
        for item in out:
            if sent < len(item):
                break
            sent -= len(item)
            done += 1
        del out[:done]
        self.written += done
        self._head_sent = sent
        return False

    async def drain(self) -> None:
        """Wait until everything queued is written. Raises ConnectionClosed if the peer
        is gone."""
        if self._send_lock is None:
            self._send_lock = trio.Lock()
        async with self._send_lock:
            while not self.write_nowait():
                try:
                    await trio.lowlevel.wait_writable(self.stream.socket)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
                    raise ConnectionClosed(str(error)) from None

    def discard_unsent(self) -> None:
        """Drop the frames not yet begun on the socket (a closing connection's), keeping
        the one partly written, so what follows still parses."""
        del self._out[1 if self._head_sent else 0 :]
        self.queued = self.written + len(self._out)

    async def flush(self) -> None:
        """Write what the protocol queued (handshake, pongs, close), after everything
        queued before it. Raises ConnectionClosed if the peer is gone."""
        chunks = self.protocol.data_to_send()
        if not chunks:
            return
        # An empty last chunk asks for a half-close (EOF) once the rest is written.
        eof = not chunks[-1]
        data = b"".join(chunks)
        if data:
            self.queue(data)
        await self.drain()
        if eof:
            try:
                await self.stream.send_eof()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
                raise ConnectionClosed(str(error)) from None

    async def receive_text(self) -> bytes | None:
        """The next complete text message, or None once the connection is closed.

        Raises ``BinaryMessage`` at the first frame of a binary message (nothing of it is
        kept). Control frames are answered by the protocol (pong to ping, close
        handshake)."""
        while True:
            while self._pending:
                message = self._assemble(self._pending.pop(0))
                if message is not None:
                    return message
            if self.protocol.state is State.CLOSED:
                return None
            try:
                data = await self._receive()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return None
            if data:
                self.last_heard = trio.current_time()
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
            self.is_open = self.protocol.state is State.OPEN
            self._pending.extend(
                event for event in self.protocol.events_received() if isinstance(event, Frame)
            )
            try:
                await self.flush()
            except ConnectionClosed:
                return None
            if not data and not self._pending:
                return None

    async def _receive(self) -> bytes:
        """What the socket has, waiting until it has something (b"" at EOF).

        The socket's own read, not ``SocketStream.receive_some``: an idle connection
        waits here, and the three frames fewer on its stack are memory every idle
        connection keeps (bench/idle)."""
        try:
            data = os.read(self._fd, RECEIVE_SIZE)
        except BlockingIOError:
            pass
        else:
            await trio.lowlevel.checkpoint()  # as any Trio read: a chance to be cancelled
            return data
        while True:
            await trio.lowlevel.wait_readable(self.stream.socket)
            try:
                return os.read(self._fd, RECEIVE_SIZE)
            except BlockingIOError:
                continue

    def _assemble(self, frame: Frame) -> bytes | None:
        if frame.opcode is Opcode.BINARY:
            raise BinaryMessage
        if frame.opcode is Opcode.TEXT:
            if frame.fin:
                return bytes(frame.data)
            self._fragments = [bytes(frame.data)]
        elif frame.opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                message, self._fragments = b"".join(self._fragments), []
                return message
        return None

    async def close(self, code: int, reason: str = "", *, timeout: float = 2.0) -> None:
        """Start the closing handshake, wait briefly for the peer's answer, close the socket.

        Never raises; safe to call twice."""
        with trio.move_on_after(timeout) as scope:
            scope.shield = True
            try:
                if self.protocol.state is State.OPEN:
                    self.protocol.send_close(code, reason)
                    self.is_open = False
                    await self.flush()
                while self.protocol.state is not State.CLOSED:
                    data = await self.stream.receive_some(RECEIVE_SIZE)
                    if not data:
                        break
                    self.protocol.receive_data(data)
                    self.protocol.events_received()
                    await self.flush()
            except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
        with trio.CancelScope(shield=True):
            # Before the socket closes: its descriptor may be reused by the next one.
            self._closed = True
            await self.stream.aclose()
