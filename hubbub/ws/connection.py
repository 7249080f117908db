"""A WebSocket connection: the ``websockets`` Sans-I/O protocol driven over a Trio stream.

This module only moves bytes and frames; it knows nothing of chat. Reads and writes may
happen from two tasks (a reader and a writer); writes are serialised by a lock.
"""

from __future__ import annotations

import logging

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
        self._send_lock = trio.Lock()
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

    async def flush(self) -> None:
        """Write whatever the protocol has queued. Raises ConnectionClosed if the peer is gone."""
        async with self._send_lock:
            chunks = self.protocol.data_to_send()
            if not chunks:
                return
            # The protocol queues one chunk per frame; one write for all of them saves a
            # system call per frame. An empty last chunk asks for a half-close (EOF).
            eof = not chunks[-1]
            data = b"".join(chunks)
            try:
                if data:
                    await self.stream.send_all(data)
                if eof:
                    await self.stream.send_eof()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
                raise ConnectionClosed(str(error)) from None

    async def send_texts(self, payloads: list[bytes]) -> None:
        """Send each payload (UTF-8 JSON) as one text frame, in one write; an empty
        payload is a ping."""
        if self.protocol.state is not State.OPEN:
            raise ConnectionClosed("connection is closing")
        for payload in payloads:
            if payload:
                self.protocol.send_text(payload)
            else:
                self.protocol.send_ping(b"hb")
        await self.flush()

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
                data = await self.stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return None
            if data:
                self.last_heard = trio.current_time()
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
            self._pending.extend(
                event for event in self.protocol.events_received() if isinstance(event, Frame)
            )
            try:
                await self.flush()
            except ConnectionClosed:
                return None
            if not data and not self._pending:
                return None

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
            await self.stream.aclose()
