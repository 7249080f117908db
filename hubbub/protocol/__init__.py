"""The WebSocket protocol, sans I/O: frames, their JSON codec, and why a frame is refused.

Pure functions and frozen classes only: no sockets, no Trio, no storage. A session
decodes what a client sent with ``decode_client_frame`` (which raises only
``ProtocolError``) and sends frames with ``encode``.
"""

from hubbub.protocol.codec import (
    DEFAULT_MAX_TEXT_LENGTH,
    decode_client_frame,
    decode_server_frame,
    encode,
)
from hubbub.protocol.errors import ALL_REASONS, ProtocolError
from hubbub.protocol.frames import (
    Ack,
    ClientFrame,
    ErrorOut,
    GroupMessageOut,
    GroupReadOut,
    MessageOut,
    Ping,
    Pong,
    PresenceOut,
    PresenceQuery,
    ReadDirect,
    ReadGroup,
    ReadReceipt,
    SendDirect,
    SendGroup,
    ServerFrame,
    StatusOut,
)

__all__ = [
    "ALL_REASONS",
    "DEFAULT_MAX_TEXT_LENGTH",
    "Ack",
    "ClientFrame",
    "ErrorOut",
    "GroupMessageOut",
    "GroupReadOut",
    "MessageOut",
    "Ping",
    "Pong",
    "PresenceOut",
    "PresenceQuery",
    "ProtocolError",
    "ReadDirect",
    "ReadGroup",
    "ReadReceipt",
    "SendDirect",
    "SendGroup",
    "ServerFrame",
    "StatusOut",
    "decode_client_frame",
    "decode_server_frame",
    "encode",
]
