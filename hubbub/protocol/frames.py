"""Every WebSocket frame of the wire contract (docs/contract.md), one frozen attrs class each.

A class is the single definition of its frame's wire shape: its fields, in order, are the
JSON object's keys after ``type``. ``type`` is a constant field (not an ``__init__``
argument) so that every frame knows its own wire name and encodes it first.

Client frames carry the value rules of the contract as validators (ids are positive
64-bit integers, ``client_id`` is 1..128 characters, ...), so a frame that exists is a
frame the server accepts the shape of. JSON type strictness (a boolean is not an id) is
the codec's job; rules that depend on configuration (the text length limit) are too.
Server frames are built by trusted code on the hot path and carry no validators.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import attrs

INT64_MAX = 2**63 - 1
MAX_CLIENT_ID_LENGTH = 128
MAX_IMAGE_URL_LENGTH = 2048
MAX_PRESENCE_QUERY = 1000

MessageStatus = Literal["pending", "delivered", "read"]
PresenceStatus = Literal["online", "offline"]


def wire_type(cls: type) -> str:
    """The ``type`` string a frame class has on the wire."""
    return attrs.fields(cls).type.default


def is_valid_client_id(value: object) -> bool:
    """Whether ``value`` is a usable ``client_id``: a string of 1..128 characters, no NUL."""
    return type(value) is str and 0 < len(value) <= MAX_CLIENT_ID_LENGTH and "\x00" not in value


def _check_id(_instance: object, attribute: attrs.Attribute, value: int) -> None:
    if not 0 < value <= INT64_MAX:
        raise ValueError(f"{attribute.name} must be an id in 1..2**63-1, not {value!r}")


def _check_client_id(_instance: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and not is_valid_client_id(value):
        raise ValueError(
            f"{attribute.name} must be a string of 1..{MAX_CLIENT_ID_LENGTH} characters, no NUL"
        )


def _unique_in_order(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(values))


_optional_image_url = attrs.validators.optional(attrs.validators.max_len(MAX_IMAGE_URL_LENGTH))


# Client -> server


@attrs.frozen
class SendDirect:
    """``message``: a direct message. ``message`` and/or ``image_url`` must be given."""

    type: str = attrs.field(default="message", init=False, repr=False)
    recipient_id: int = attrs.field(validator=_check_id)
    message: str | None = None
    image_url: str | None = attrs.field(default=None, validator=_optional_image_url)
    client_id: str | None = attrs.field(default=None, validator=_check_client_id)


@attrs.frozen
class SendGroup:
    """``group_message``: a message to a group the sender belongs to."""

    type: str = attrs.field(default="group_message", init=False, repr=False)
    group_id: int = attrs.field(validator=_check_id)
    message: str | None = None
    image_url: str | None = attrs.field(default=None, validator=_optional_image_url)
    client_id: str | None = attrs.field(default=None, validator=_check_client_id)


@attrs.frozen
class ReadDirect:
    """``read``: the recipient marks a direct message read."""

    type: str = attrs.field(default="read", init=False, repr=False)
    message_id: int = attrs.field(validator=_check_id)


@attrs.frozen
class ReadGroup:
    """``group_read``: the member has read the group up to ``message_id``."""

    type: str = attrs.field(default="group_read", init=False, repr=False)
    group_id: int = attrs.field(validator=_check_id)
    message_id: int = attrs.field(validator=_check_id)


@attrs.frozen
class PresenceQuery:
    """``presence``: ask for the presence of up to 1000 users (duplicates dropped, order kept)."""

    type: str = attrs.field(default="presence", init=False, repr=False)
    user_ids: tuple[int, ...] = attrs.field(
        converter=_unique_in_order,
        validator=attrs.validators.deep_iterable(
            member_validator=_check_id,
            iterable_validator=attrs.validators.max_len(MAX_PRESENCE_QUERY),
        ),
    )


@attrs.frozen
class Ping:
    """``ping``: the server answers ``pong``."""

    type: str = attrs.field(default="ping", init=False, repr=False)


ClientFrame = SendDirect | SendGroup | ReadDirect | ReadGroup | PresenceQuery | Ping
CLIENT_FRAMES: tuple[type[ClientFrame], ...] = (
    SendDirect,
    SendGroup,
    ReadDirect,
    ReadGroup,
    PresenceQuery,
    Ping,
)


# Server -> client. ``client_id`` is left out of the JSON when it is None.


@attrs.frozen
class MessageOut:
    """``message``: a direct message, to the recipient and the sender's connections."""

    type: str = attrs.field(default="message", init=False, repr=False)
    message_id: int
    author_id: int
    author_name: str
    recipient_id: int
    recipient_name: str
    message: str | None
    image_url: str | None
    timestamp: str  # ISO-8601 with timezone
    status: MessageStatus
    client_id: str | None = None


@attrs.frozen
class Ack:
    """``ack``: the message is durably stored."""

    type: str = attrs.field(default="ack", init=False, repr=False)
    message_id: int
    status: MessageStatus
    client_id: str | None = None


@attrs.frozen
class GroupMessageOut:
    """``group_message``: a group message, to every member, the sender included."""

    type: str = attrs.field(default="group_message", init=False, repr=False)
    group_id: int
    group_name: str
    message_id: int
    author_id: int
    author_name: str
    message: str | None
    image_url: str | None
    timestamp: str  # ISO-8601 with timezone
    status: MessageStatus
    client_id: str | None = None


@attrs.frozen
class ReadReceipt:
    """``read_receipt``: to the author of a direct message when it is read."""

    type: str = attrs.field(default="read_receipt", init=False, repr=False)
    message_id: int
    reader_id: int
    reader_name: str
    author_id: int


@attrs.frozen
class GroupReadOut:
    """``group_read``: a member has read the group up to ``message_id``."""

    type: str = attrs.field(default="group_read", init=False, repr=False)
    group_id: int
    user_id: int
    message_id: int


@attrs.frozen
class PresenceOut:
    """``presence``: a user went online or offline, or the answer to a query."""

    type: str = attrs.field(default="presence", init=False, repr=False)
    user_id: int
    username: str
    presence_status: PresenceStatus
    last_seen_iso: str | None  # null while online


@attrs.frozen
class StatusOut:
    """``status``: a direct message's status changed; to the author's connections."""

    type: str = attrs.field(default="status", init=False, repr=False)
    message_id: int
    status: MessageStatus


@attrs.frozen
class Pong:
    """``pong``: the answer to ``ping``."""

    type: str = attrs.field(default="pong", init=False, repr=False)


@attrs.frozen
class ErrorOut:
    """``error``: a frame was refused. ``reason`` is one of ``errors.ALL_REASONS``."""

    type: str = attrs.field(default="error", init=False, repr=False)
    reason: str
    client_id: str | None = None


ServerFrame = (
    MessageOut
    | Ack
    | GroupMessageOut
    | ReadReceipt
    | GroupReadOut
    | PresenceOut
    | StatusOut
    | Pong
    | ErrorOut
)
SERVER_FRAMES: tuple[type[ServerFrame], ...] = (
    MessageOut,
    Ack,
    GroupMessageOut,
    ReadReceipt,
    GroupReadOut,
    PresenceOut,
    StatusOut,
    Pong,
    ErrorOut,
)
