"""A WebSocket connection, once upgraded: ``client_frames`` driven over a Trio stream.

This module only moves bytes and frames; it knows nothing of chat. Reading is one reader
task's, parsed by ``ClientFrames``. Everything bound for the socket, data frames framed by
``frames.text_frame`` and what the parser owes the peer (pongs, the close handshake), goes
through one queue of byte strings, in order. ``write_nowait``
writes what the socket takes without waiting, so a caller with many connections to
serve writes them all from one task; ``drain`` waits for a socket that is full.
"""

from __future__ import annotations

import logging
import os

import trio

from hubbub.ws.client_frames import BINARY, ClientFrames, State

log = logging.getLogger("hubbub.ws")

RECEIVE_SIZE = 65536


class ConnectionClosed(Exception):
    """The peer closed the connection or it broke; stop using it."""


class BinaryMessage(Exception):
    """The peer sent a binary message: the chat protocol is JSON in text frames only."""


class WebSocketConnection:
    """One upgraded WebSocket over ``stream``; ``received`` is what the client sent after
    its upgrade request, read with it. Messages are at most ``max_size`` bytes."""

    def __init__(self, stream: trio.SocketStream, received: bytes, max_size: int) -> None:
        self.stream = stream
        self.frames = ClientFrames(max_size)
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
        #: (checked on every push), kept in step wherever the parser's state can move.
        self.is_open = True
        # A list, not a deque: an empty deque costs ~0.6 KiB, per idle connection.
        #: Messages parsed and not yet taken (frames sent with the request, too: clients
        #: must wait for the answer, some don't).
        self._pending = self.frames.receive_data(received) if received else []
        #: When the peer last sent anything (trio clock), for the keepalive.
        self.last_heard = trio.current_time()

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
        """Write what the parser owes the peer (pongs, close), after everything queued
        before it. Raises ConnectionClosed if the peer is gone."""
        data = self.frames.data_to_send()
        if data:
            self.queue(data)
            await self.drain()

    async def receive_text(self) -> bytes | None:
        """The next complete text message, or None once the connection is closed.

        Raises ``BinaryMessage`` at the first frame of a binary message (nothing of it is
        kept). A ping is answered here; a close (or a breach of the protocol) by ``close``,
        which the owner calls once done with the connection."""
        frames = self.frames
        while True:
            if self._pending:
                message = self._pending.pop(0)
                if message is BINARY:
                    raise BinaryMessage
                return message  # type: ignore[return-value]
            if frames.state is State.CLOSED:
                return None
            try:
                data = await self._receive()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return None
            if data:
                self.last_heard = trio.current_time()
            self._pending = frames.receive_data(data)
            self.is_open = frames.state is State.OPEN
            if frames.state is State.CLOSED:
                # The answer to the peer's close (or to its breach of the protocol) is
                # sent by ``close``: the peer learns that the connection is over only
                # once its owner is done with it (a session's delivery marks committed).
                continue
            try:
                await self.flush()
            except ConnectionClosed:
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

    async def close(self, code: int, reason: str = "", *, timeout: float = 2.0) -> None:
        """Start the closing handshake, wait briefly for the peer's answer, close the socket.

        Never raises; safe to call twice."""
        with trio.move_on_after(timeout) as scope:
            scope.shield = True
            try:
                self.frames.send_close(code, reason)
                self.is_open = False
                await self.flush()
                while self.frames.state is not State.CLOSED:
                    data = await self.stream.receive_some(RECEIVE_SIZE)
                    self.frames.receive_data(data)  # what it says now goes unread
                    if not data:
                        break
                    await self.flush()
            except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
        with trio.CancelScope(shield=True):
            # Before the socket closes: its descriptor may be reused by the next one.
            self._closed = True
            await self.stream.aclose()
