"""The WebSocket protocol, sans I/O: frames, their JSON codec, and why a frame is refused.

Pure functions and frozen classes only: no sockets, no Trio, no storage. A session
decodes what a client sent with ``decode_client_frame`` (which raises only
``ProtocolError``) and sends frames with ``encode``. The engine applies ``text_problem``
(to an ``edit``) and ``emoji_problem`` (to a ``react``) after its permission check.
"""

from hubbub.protocol.codec import (
    DEFAULT_MAX_TEXT_LENGTH,
    decode_client_frame,
    decode_server_frame,
    encode,
)
from hubbub.protocol.errors import ALL_REASONS, ProtocolError
from hubbub.protocol.frames import (
    STREAM_FRAMES,
    Ack,
    ClientFrame,
    Delete,
    Edit,
    ErrorOut,
    GroupMessageOut,
    GroupReadOut,
    MessageDeleted,
    MessageEdited,
    MessageOut,
    Ping,
    Pong,
    PresenceOut,
    PresenceQuery,
    React,
    ReactionOut,
    ReactionSummary,
    ReadDirect,
    ReadGroup,
    ReadReceipt,
    SendDirect,
    SendGroup,
    ServerFrame,
    StatusOut,
    Synced,
    Typing,
    TypingOut,
)
from hubbub.protocol.rules import emoji_problem, text_problem

__all__ = [
    "ALL_REASONS",
    "DEFAULT_MAX_TEXT_LENGTH",
    "STREAM_FRAMES",
    "Ack",
    "ClientFrame",
    "Delete",
    "Edit",
    "ErrorOut",
    "GroupMessageOut",
    "GroupReadOut",
    "MessageDeleted",
    "MessageEdited",
    "MessageOut",
    "Ping",
    "Pong",
    "PresenceOut",
    "PresenceQuery",
    "ProtocolError",
    "React",
    "ReactionOut",
    "ReactionSummary",
    "ReadDirect",
    "ReadGroup",
    "ReadReceipt",
    "SendDirect",
    "SendGroup",
    "ServerFrame",
    "StatusOut",
    "Synced",
    "Typing",
    "TypingOut",
    "decode_client_frame",
    "decode_server_frame",
    "emoji_problem",
    "encode",
    "text_problem",
]
