"""Why a frame was refused: the reason strings clients match on, and the error that carries one.

The strings are part of the wire contract (docs/contract.md): clients compare them exactly, so
they never change once published. New reasons may be added; add each one to
``ALL_REASONS`` and to docs/protocol.md.
"""

from __future__ import annotations

RATE_LIMITED = "rate limit exceeded"
EMPTY_MESSAGE = "empty message"
NOT_A_MEMBER = "user is not a member of the group"
UNKNOWN_TYPE = "unknown_type"
INVALID_FRAME = "invalid frame"
RECIPIENT_NOT_FOUND = "recipient not found"
MESSAGE_TOO_LONG = "message too long"
STORAGE_UNAVAILABLE = "storage unavailable"
NOT_ALLOWED = "not allowed"
GROUP_NOT_FOUND = "group not found"
INVALID_IMAGE_URL = "invalid image_url"
SERVER_BUSY = "server busy"
# v2
INVALID_REPLY_TO = "invalid reply_to"
INVALID_REACTION = "invalid reaction"

ALL_REASONS: tuple[str, ...] = (
    RATE_LIMITED,
    EMPTY_MESSAGE,
    NOT_A_MEMBER,
    UNKNOWN_TYPE,
    INVALID_FRAME,
    RECIPIENT_NOT_FOUND,
    MESSAGE_TOO_LONG,
    STORAGE_UNAVAILABLE,
    NOT_ALLOWED,
    GROUP_NOT_FOUND,
    INVALID_IMAGE_URL,
    SERVER_BUSY,
    INVALID_REPLY_TO,
    INVALID_REACTION,
)


class ProtocolError(Exception):
    """A client frame was refused; the connection stays open.

    ``reason`` is one of the contract strings above: send it back as an ``error`` frame.
    ``client_id`` is the refused frame's own ``client_id`` when it had a valid one, so
    the error frame can echo it and the client can tell which send failed.
    """

    def __init__(self, reason: str, client_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.client_id = client_id

    def __repr__(self) -> str:
        return f"ProtocolError(reason={self.reason!r}, client_id={self.client_id!r})"
