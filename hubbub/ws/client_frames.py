"""What a client sends after the handshake, parsed: pure code, no I/O (RFC 6455, 5).

``ClientFrames`` takes the bytes a socket delivered and gives back whole text messages; it
answers pings and the closing handshake by queueing the server's frames, which the caller
writes. It knows only what hubbub accepts: no extension is negotiated (so the reserved bits
are 0), client frames are masked, control frames are short and whole, a message is at most
``max_size`` bytes however it is fragmented. Any breach closes the connection with the
RFC's code (1002, 1009, 1007 for a close reason that is not UTF-8) and nothing after it is
read.

One per connection, kept for its whole life, so it holds nothing while idle: the shared
empty ``bytes`` for its buffer, None for fragments not begun. (The ``websockets`` protocol
object that did this before kept a parser generator and its buffers per connection:
about 2 KB of every idle connection, bench/idle.)
"""

from __future__ import annotations

import enum
from typing import Final

from hubbub.ws.frames import FIN_CLOSE, FIN_PONG, close_frame, control_frame

try:  # the C version ships with websockets' wheels
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - a source install without the extension

    def apply_mask(data: bytes | bytearray | memoryview, mask: bytes | bytearray) -> bytes:
        """``data`` XOR the 4-byte ``mask`` repeated (RFC 6455, 5.3)."""
        size = len(data)
        repeated = (bytes(mask) * (size // 4 + 1))[:size]
        return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(size, "big")


_CONT, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

CLOSE_NO_STATUS: Final = 1005
CLOSE_ABNORMAL: Final = 1006
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_INVALID_DATA: Final = 1007
CLOSE_TOO_BIG: Final = 1009
# Codes a peer may send (RFC 6455 7.4.1 and the IANA registry); 3000-4999 are also fine.
_PEER_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


class State(enum.Enum):
    """Where the connection is in its life, as far as frames go."""

    OPEN = "open"
    #: We sent a close frame and wait for the peer's.
    CLOSING = "closing"
    #: The closing handshake is over, the peer is gone, or it broke the protocol.
    CLOSED = "closed"


class Binary:
    """In ``receive_data``'s list: the peer began a binary message (the chat protocol is
    JSON in text frames only). Nothing of it is kept, nor of what follows until a close."""


BINARY: Final = Binary()


class ClientFrames:
    """The client's side of one connection, parsed as it arrives."""

    __slots__ = ("_buffer", "_fragments", "_outgoing", "_refusing", "_size", "peer_code", "state")

    def __init__(self, max_size: int) -> None:
        self._buffer = b""
        #: The message begun, while its continuation frames come.
        self._fragments: bytearray | None = None
        #: The message size limit, in payload bytes.
        self._size = max_size
        #: Data frames are dropped from here on: a binary message was refused, or we
        #: began the closing handshake (unchecked, so a message cut short is no breach).
        self._refusing = False
        self._outgoing = b""
        self.state = State.OPEN
        #: The close code the peer sent (1005 if none; 1006 if it left without a close
        #: frame); None while it has not closed, or if we closed on a protocol error.
        self.peer_code: int | None = None

    def receive_data(self, data: bytes) -> list[bytes | Binary]:
        """Take what the socket delivered (``b""``: the peer's end of stream) and return
        the messages it completed, in order: text payloads, or ``BINARY``."""
        if self.state is State.CLOSED:
            return []
        if not data:
            self.state = State.CLOSED
            self.peer_code = CLOSE_ABNORMAL
            return []
        buffer = self._buffer + data if self._buffer else data
        messages: list[bytes | Binary] = []
        view = memoryview(buffer)
        position, end = 0, len(buffer)
        while end - position >= 2 and self.state is not State.CLOSED:
            first, second = buffer[position], buffer[position + 1]
            length, header = second & 0x7F, 2
            if length == 126:
                if end - position < 4:
                    break
                length, header = int.from_bytes(view[position + 2 : position + 4], "big"), 4
            elif length == 127:
                if end - position < 10:
                    break
                length, header = int.from_bytes(view[position + 2 : position + 10], "big"), 10
            problem = self._problem(first, second, length)
            if problem is not None:
                self._fail(*problem)
                break
            start = position + header + 4
            if end - start < length:
                break
            payload = apply_mask(view[start : start + length], buffer[start - 4 : start])
            position = start + length
            message = self._frame(first & 0x0F, bool(first & 0x80), payload)
            if message is not None:
                messages.append(message)
        self._buffer = buffer[position:] if self.state is not State.CLOSED else b""
        return messages

    def data_to_send(self) -> bytes:
        """The frames the server owes the peer so far (pongs, close), taken."""
        outgoing, self._outgoing = self._outgoing, b""
        return outgoing

    def send_close(self, code: int, reason: str = "") -> None:
        """Begin the closing handshake (queue our close frame), if it has not begun."""
        if self.state is State.OPEN:
            self._outgoing += close_frame(code, reason)
            self.state = State.CLOSING
            self._refusing = True
            self._fragments = None

    def _problem(self, first: int, second: int, length: int) -> tuple[int, str] | None:
        """Why a frame with this header is refused, known before its payload arrives."""
        opcode = first & 0x0F
        if first & 0x70:
            return CLOSE_PROTOCOL_ERROR, "reserved bits must be 0"
        if not second & 0x80:
            return CLOSE_PROTOCOL_ERROR, "incorrect masking"
        if opcode >= _CLOSE:
            if opcode not in (_CLOSE, _PING, _PONG):
                return CLOSE_PROTOCOL_ERROR, "invalid opcode"
            if not first & 0x80:
                return CLOSE_PROTOCOL_ERROR, "fragmented control frame"
            if length > 125:
                return CLOSE_PROTOCOL_ERROR, "control frame too long"
            return None
        if opcode > _BINARY:
            return CLOSE_PROTOCOL_ERROR, "invalid opcode"
        if (opcode == _CONT) is (self._fragments is None) and not self._refusing:
            if opcode == _CONT:
                return CLOSE_PROTOCOL_ERROR, "unexpected continuation frame"
            return CLOSE_PROTOCOL_ERROR, "expected a continuation frame"
        size = length + (len(self._fragments) if self._fragments is not None else 0)
        if size > self._size:
            return CLOSE_TOO_BIG, f"over size limit ({size} > {self._size} bytes)"
        return None

    def _frame(self, opcode: int, fin: bool, payload: bytes) -> bytes | Binary | None:
        if opcode == _TEXT:
            if self._refusing:
                return None
            if fin:
                return payload
            self._fragments = bytearray(payload)
        elif opcode == _CONT:
            if self._fragments is None:  # the rest of a refused binary message
                return None
            self._fragments += payload
            if fin:
                message, self._fragments = bytes(self._fragments), None
                return message
        elif opcode == _BINARY:
            if self._refusing:
                return None
            self._refusing = True
            return BINARY
        elif opcode == _PING:
            if self.state is State.OPEN:
                self._outgoing += control_frame(FIN_PONG, payload)
        elif opcode == _CLOSE:
            self._closed_by_peer(payload)
        return None

    def _closed_by_peer(self, payload: bytes) -> None:
        if len(payload) == 1:
            return self._fail(CLOSE_PROTOCOL_ERROR, "close frame too short")
        code = int.from_bytes(payload[:2], "big") if payload else CLOSE_NO_STATUS
        if payload and not (code in _PEER_CODES or 3000 <= code < 5000):
            return self._fail(CLOSE_PROTOCOL_ERROR, f"invalid close code {code}")
        try:
            bytes(payload[2:]).decode()
        except UnicodeDecodeError:
            return self._fail(CLOSE_INVALID_DATA, "close reason is not UTF-8")
        if self.state is State.OPEN:
            # The RFC's answer: the same code back (none if none was given).
            self._outgoing += control_frame(FIN_CLOSE, bytes(payload[:2]))
        self.state = State.CLOSED
        self.peer_code = code
        return None

    def _fail(self, code: int, reason: str) -> None:
        """Close on a breach of the protocol: our close frame, nothing more read."""
        if self.state is State.OPEN:
            self._outgoing += close_frame(code, reason)
        self.state = State.CLOSED
        self._fragments = None
