"""Every WebSocket frame of the wire contract (docs/contract.md), one frozen attrs class each.

A class is the single definition of its frame's wire shape: its fields, in order, are the
JSON object's keys after ``type``. ``type`` is a constant field (not an ``__init__``
argument) so that every frame knows its own wire name and encodes it first.

Client frames carry the value rules of the contract as validators (ids are positive
64-bit integers, ``client_id`` is 1..128 characters, ...), so a frame that exists is a
frame the server accepts the shape of. JSON type strictness (a boolean is not an id) is
the codec's job; rules that depend on configuration (the text length limit) are too.
Server frames are built by trusted code on the hot path and carry no validators.

A field made with ``omitted_if_none()`` is left out of the JSON while it is None (as
``client_id`` always was) instead of being written as null; every other field is always
written. The v2 event frames have fields of that kind in the middle, so they are
keyword-only.

v2 (docs/contract.md, "v2"): the codec checks only the JSON types of ``Edit.message`` and
``React.emoji``; the text and emoji rules (``rules.text_problem``, ``rules.emoji_problem``)
are the engine's to apply, after it checked that the sender may (``not allowed`` comes
first).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, TypedDict

import attrs

INT64_MAX = 2**63 - 1
MAX_CLIENT_ID_LENGTH = 128
MAX_IMAGE_URL_LENGTH = 2048
MAX_PRESENCE_QUERY = 1000

MessageStatus = Literal["pending", "delivered", "read"]
PresenceStatus = Literal["online", "offline"]
ReactionOp = Literal["add", "remove"]
TypingState = Literal["start", "stop"]

#: The attrs metadata key that marks a field left out of the JSON while it is None.
OMIT_IF_NONE = "hubbub.omit_if_none"


def omitted_if_none(**kwargs: Any) -> Any:
    """An optional field (default None) that the codec leaves out of the JSON while None."""
    return attrs.field(default=None, metadata={OMIT_IF_NONE: True}, **kwargs)


def is_omitted_if_none(field: attrs.Attribute) -> bool:
    """Whether the codec leaves ``field`` out of the JSON while it is None."""
    return bool(field.metadata.get(OMIT_IF_NONE))


def wire_type(cls: type) -> str:
    """The ``type`` string a frame class has on the wire."""
    return attrs.fields(cls).type.default


def is_valid_client_id(value: object) -> bool:
    """Whether ``value`` is a usable ``client_id``: a string of 1..128 characters, no NUL."""
    return type(value) is str and 0 < len(value) <= MAX_CLIENT_ID_LENGTH and "\x00" not in value


def _check_id(_instance: object, attribute: attrs.Attribute, value: int) -> None:
    if not 0 < value <= INT64_MAX:
        raise ValueError(f"{attribute.name} must be an id in 1..2**63-1, not {value!r}")


def _check_optional_id(_instance: object, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None:
        _check_id(_instance, attribute, value)


def _check_client_id(_instance: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and not is_valid_client_id(value):
        raise ValueError(
            f"{attribute.name} must be a string of 1..{MAX_CLIENT_ID_LENGTH} characters, no NUL"
        )


def _unique_in_order(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(values))


_optional_image_url = attrs.validators.optional(attrs.validators.max_len(MAX_IMAGE_URL_LENGTH))


def _client_id() -> Any:
    """The optional ``client_id`` of a client frame (left out of the JSON while None)."""
    return omitted_if_none(validator=_check_client_id)


def _optional_id() -> Any:
    """An optional id of a client frame (left out of the JSON while None)."""
    return omitted_if_none(validator=_check_optional_id)


# Client -> server


@attrs.frozen
class SendDirect:
    """``message``: a direct message. ``message`` and/or ``image_url`` must be given."""

    type: str = attrs.field(default="message", init=False, repr=False)
    recipient_id: int = attrs.field(validator=_check_id)
    message: str | None = None
    image_url: str | None = attrs.field(default=None, validator=_optional_image_url)
    client_id: str | None = _client_id()
    #: v2: a message of the same conversation this one answers.
    reply_to: int | None = _optional_id()


@attrs.frozen
class SendGroup:
    """``group_message``: a message to a group the sender belongs to."""

    type: str = attrs.field(default="group_message", init=False, repr=False)
    group_id: int = attrs.field(validator=_check_id)
    message: str | None = None
    image_url: str | None = attrs.field(default=None, validator=_optional_image_url)
    client_id: str | None = _client_id()
    #: v2: a message of the same group this one answers.
    reply_to: int | None = _optional_id()


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


# v2 client frames. A group message is named by ``group_id`` plus ``message_id``, a direct
# one by ``message_id`` alone.


@attrs.frozen
class Edit:
    """``edit``: the author replaces a message's text (text rules: ``rules.text_problem``)."""

    type: str = attrs.field(default="edit", init=False, repr=False)
    message_id: int = attrs.field(validator=_check_id)
    message: str
    group_id: int | None = _optional_id()
    client_id: str | None = _client_id()


@attrs.frozen
class Delete:
    """``delete``: the author (or, in a group, an admin) deletes a message."""

    type: str = attrs.field(default="delete", init=False, repr=False)
    message_id: int = attrs.field(validator=_check_id)
    group_id: int | None = _optional_id()
    client_id: str | None = _client_id()


@attrs.frozen
class React:
    """``react``: a participant adds or removes an emoji (emoji rule: ``rules.emoji_problem``)."""

    type: str = attrs.field(default="react", init=False, repr=False)
    message_id: int = attrs.field(validator=_check_id)
    emoji: str
    group_id: int | None = _optional_id()
    op: ReactionOp = "add"
    client_id: str | None = _client_id()


def _one_conversation(instance: Typing, _attribute: attrs.Attribute, _value: object) -> None:
    if (instance.recipient_id is None) == (instance.group_id is None):
        raise ValueError("typing names exactly one of recipient_id and group_id")


@attrs.frozen
class Typing:
    """``typing``: the sender started or stopped typing to a user or in a group; exactly one
    of ``recipient_id`` and ``group_id``."""

    type: str = attrs.field(default="typing", init=False, repr=False)
    recipient_id: int | None = _optional_id()
    group_id: int | None = omitted_if_none(validator=[_check_optional_id, _one_conversation])
    state: TypingState = "start"


ClientFrame = (
    SendDirect
    | SendGroup
    | ReadDirect
    | ReadGroup
    | PresenceQuery
    | Ping
    | Edit
    | Delete
    | React
    | Typing
)
CLIENT_FRAMES: tuple[type[ClientFrame], ...] = (
    SendDirect,
    SendGroup,
    ReadDirect,
    ReadGroup,
    PresenceQuery,
    Ping,
    Edit,
    Delete,
    React,
    Typing,
)


# Server -> client. ``client_id`` and every ``omitted_if_none()`` field are left out of the
# JSON when None.


class ReactionSummary(TypedDict):
    """One emoji on a message and who put it there, as message objects carry it."""

    emoji: str
    user_ids: list[int]


@attrs.frozen
class MessageOut:
    """``message``: a direct message, to the recipient and the sender's connections."""

    type: str = attrs.field(default="message", init=False, repr=False)
    message_id: int
    author_id: int
    author_name: str
    recipient_id: int
    recipient_name: str
    message: str | None  # null (as image_url) for a deleted message
    image_url: str | None
    timestamp: str  # ISO-8601 with timezone
    status: MessageStatus
    # v2: always written (null, false, [] when there is nothing to say).
    edited_at: str | None
    deleted: bool
    reply_to: int | None
    reactions: tuple[ReactionSummary, ...]
    cursor: str | None = omitted_if_none()
    client_id: str | None = omitted_if_none()


@attrs.frozen
class Ack:
    """``ack``: the message is durably stored."""

    type: str = attrs.field(default="ack", init=False, repr=False)
    message_id: int
    status: MessageStatus
    client_id: str | None = omitted_if_none()


@attrs.frozen
class GroupMessageOut:
    """``group_message``: a group message, to every member, the sender included."""

    type: str = attrs.field(default="group_message", init=False, repr=False)
    group_id: int
    group_name: str
    message_id: int
    author_id: int
    author_name: str
    message: str | None  # null (as image_url) for a deleted message
    image_url: str | None
    timestamp: str  # ISO-8601 with timezone
    status: MessageStatus
    # v2: always written (null, false, [] when there is nothing to say).
    edited_at: str | None
    deleted: bool
    reply_to: int | None
    reactions: tuple[ReactionSummary, ...]
    cursor: str | None = omitted_if_none()
    client_id: str | None = omitted_if_none()


@attrs.frozen
class ReadReceipt:
    """``read_receipt``: to the author of a direct message when it is read."""

    type: str = attrs.field(default="read_receipt", init=False, repr=False)
    message_id: int
    reader_id: int
    reader_name: str
    author_id: int
    cursor: str | None = omitted_if_none()


@attrs.frozen
class GroupReadOut:
    """``group_read``: a member has read the group up to ``message_id``."""

    type: str = attrs.field(default="group_read", init=False, repr=False)
    group_id: int
    user_id: int
    message_id: int
    cursor: str | None = omitted_if_none()


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
    cursor: str | None = omitted_if_none()


@attrs.frozen
class Pong:
    """``pong``: the answer to ``ping``."""

    type: str = attrs.field(default="pong", init=False, repr=False)


@attrs.frozen
class ErrorOut:
    """``error``: a frame was refused. ``reason`` is one of ``errors.ALL_REASONS``."""

    type: str = attrs.field(default="error", init=False, repr=False)
    reason: str
    client_id: str | None = omitted_if_none()


# v2 server frames. Each stream event carries its ``cursor``; the sender's copies carry the
# request's ``client_id``.


@attrs.frozen(kw_only=True)
class MessageEdited:
    """``message_edited``: a message's text changed; to every participant."""

    type: str = attrs.field(default="message_edited", init=False, repr=False)
    message_id: int
    group_id: int | None = omitted_if_none()
    author_id: int
    message: str | None
    edited_at: str  # ISO-8601 with timezone
    cursor: str
    client_id: str | None = omitted_if_none()


@attrs.frozen(kw_only=True)
class MessageDeleted:
    """``message_deleted``: a message became a tombstone; to every participant."""

    type: str = attrs.field(default="message_deleted", init=False, repr=False)
    message_id: int
    group_id: int | None = omitted_if_none()
    deleted_by: int
    cursor: str
    client_id: str | None = omitted_if_none()


@attrs.frozen(kw_only=True)
class ReactionOut:
    """``reaction``: an emoji was added to or removed from a message; to every participant."""

    type: str = attrs.field(default="reaction", init=False, repr=False)
    message_id: int
    group_id: int | None = omitted_if_none()
    user_id: int
    emoji: str
    op: ReactionOp
    cursor: str
    client_id: str | None = omitted_if_none()


@attrs.frozen(kw_only=True)
class TypingOut:
    """``typing``: a user is typing (or stopped); to the other participants only, no cursor.
    ``recipient_id`` is the receiver (a direct conversation), else ``group_id`` is set."""

    type: str = attrs.field(default="typing", init=False, repr=False)
    user_id: int
    username: str
    recipient_id: int | None = omitted_if_none()
    group_id: int | None = omitted_if_none()
    state: TypingState


@attrs.frozen
class Synced:
    """``synced``: a resume (``since``) replayed everything after the cursor it named, or
    (``recovered`` false) the client lost its place and got the v1 catch-up instead."""

    type: str = attrs.field(default="synced", init=False, repr=False)
    cursor: str
    recovered: bool


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
    | MessageEdited
    | MessageDeleted
    | ReactionOut
    | TypingOut
    | Synced
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
    MessageEdited,
    MessageDeleted,
    ReactionOut,
    TypingOut,
    Synced,
)

#: The server frames of a user's stream: each carries the ``cursor`` to resume after it.
STREAM_FRAMES: tuple[type[ServerFrame], ...] = (
    MessageOut,
    GroupMessageOut,
    MessageEdited,
    MessageDeleted,
    ReactionOut,
    ReadReceipt,
    GroupReadOut,
    StatusOut,
)
