"""WebSocket frames the server sends, built as bytes: pure functions, no I/O.

A server's frames are not masked (RFC 6455, 5.1) and hubbub negotiates no extension,
so a text frame is a header and the payload as is: the same bytes for every socket.
A group message is framed once per node and those bytes handed to every member's
socket; ``FrameCache`` keeps the last one framed for that.
"""

from __future__ import annotations

_FIN_TEXT = 0x81
#: First bytes of a final close and pong frame.
FIN_CLOSE, FIN_PONG = 0x88, 0x8A
#: A ping the keepalive sends (its payload is not checked on the pong).
PING_FRAME = b"\x89\x02hb"


def text_frame(payload: bytes) -> bytes:
    """One final (unfragmented) text frame carrying ``payload``, which must be UTF-8."""
    length = len(payload)
    if length < 126:
        header = bytes((_FIN_TEXT, length))
    elif length < 65536:
        header = bytes((_FIN_TEXT, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((_FIN_TEXT, 127)) + length.to_bytes(8, "big")
    return header + payload


class FrameCache:
    """Frames a payload once for the pushes of it that come in a row (one per member
    of a group, in the fan-out loop). Keyed by identity: the payload object itself is
    kept, so its id cannot be reused while it is cached."""

    __slots__ = ("_frame", "_payload")

    def __init__(self) -> None:
        self._payload: bytes | None = None
        self._frame = b""

    def frame(self, payload: bytes) -> bytes:
        """The text frame of ``payload``."""
        if payload is not self._payload:
            self._frame = text_frame(payload)
            self._payload = payload
        return self._frame


def control_frame(first_byte: int, payload: bytes) -> bytes:
    """A control frame (FIN and opcode in ``first_byte``); ``payload`` at most 125 bytes."""
    return bytes((first_byte, len(payload))) + payload


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with ``code`` and as much of ``reason`` as fits (whole characters)."""
    encoded = reason.encode()[:123].decode(errors="ignore").encode()
    return control_frame(FIN_CLOSE, code.to_bytes(2, "big") + encoded)
