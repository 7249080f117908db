"""Plain records that cross the storage boundary.

Every timestamp is a timezone-aware UTC ``datetime``. Records are frozen: a
caller that wants a changed record asks storage for a new one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import attrs

#: Every record; ``hubbub.storage`` exports them all.
__all__ = [
    "ApiKey",
    "BlockRelations",
    "Conversation",
    "ConversationKey",
    "DirectMessage",
    "Group",
    "GroupMember",
    "GroupMessage",
    "MemberRole",
    "MessageKind",
    "MessageState",
    "MessageStatus",
    "Mute",
    "NewDirectMessage",
    "NewGroupMessage",
    "Reaction",
    "SpentRefreshToken",
    "StoredDirect",
    "StoredGroup",
    "StreamEvent",
    "StreamKind",
    "StreamState",
    "User",
    "UserRef",
]

MessageStatus = Literal["pending", "delivered", "read"]
MemberRole = Literal["admin", "member"]


@attrs.frozen
class User:
    id: int
    username: str
    #: None for a user provisioned without one (``storage/integrations.py``).
    email: str | None
    #: None for a user provisioned without a password: no password logs it in.
    password_hash: str | None
    created_at: datetime
    last_seen: datetime | None
    #: The id the embedding product knows the user by, if it provisioned it.
    external_id: str | None = None


@attrs.frozen
class ApiKey:
    """A server API key (never the key itself: storage keeps only its SHA-256)."""

    id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None


@attrs.frozen
class UserRef:
    id: int
    username: str


@attrs.frozen
class NewDirectMessage:
    """A direct message a sender asked to store. ``client_id`` makes resends idempotent."""

    author_id: int
    recipient_id: int
    body: str | None
    image_url: str | None
    client_id: str | None = None
    #: A message of the same conversation this one answers (checked by the caller).
    reply_to: int | None = None


@attrs.frozen
class DirectMessage:
    id: int
    author_id: int
    recipient_id: int
    body: str | None
    image_url: str | None
    client_id: str | None
    status: MessageStatus
    created_at: datetime
    #: v2 (edits, deletion, reply, reactions); the default for records built without it.
    state: MessageState = attrs.field(factory=lambda: MessageState())


@attrs.frozen
class StoredDirect:
    """One answer of ``store_direct_messages``: the stored row, and whether this call created it."""

    message: DirectMessage
    created: bool


@attrs.frozen
class Group:
    id: int
    name: str
    created_by: int
    created_at: datetime


@attrs.frozen
class GroupMember:
    group_id: int
    user_id: int
    username: str
    role: MemberRole
    last_read_message_id: int
    joined_at: datetime


@attrs.frozen
class NewGroupMessage:
    group_id: int
    author_id: int
    body: str | None
    image_url: str | None
    client_id: str | None = None
    reply_to: int | None = None


@attrs.frozen
class GroupMessage:
    id: int
    group_id: int
    author_id: int
    body: str | None
    image_url: str | None
    client_id: str | None
    created_at: datetime
    state: MessageState = attrs.field(factory=lambda: MessageState())


@attrs.frozen
class StoredGroup:
    """One answer of ``store_group_messages``."""

    message: GroupMessage
    created: bool


@attrs.frozen
class SpentRefreshToken:
    """What spending a refresh token found: whose it is and its family (login).

    ``reused``: it had been spent before, so this is a replay (the token was copied, or a
    client lost track of its newest one); its whole family is now revoked, and the caller
    must refuse it."""

    user_id: int
    family_id: str
    reused: bool


# -- v2: rich messages, the stream, conversations ------------------------------------

MessageKind = Literal["direct", "group"]

#: The stream event kinds (docs/contract.md, v2): what a user's connections can miss.
StreamKind = Literal[
    "message",
    "group_message",
    "message_edited",
    "message_deleted",
    "reaction",
    "read_receipt",
    "group_read",
    "status",
]


@attrs.frozen
class Reaction:
    """One emoji on a message and who put it there (user ids ascending)."""

    emoji: str
    user_ids: tuple[int, ...]


@attrs.frozen
class MessageState:
    """What v2 adds to a message: its edit, deletion, reply and reactions.

    ``position`` is the stream position of the message's own event (0 for a message
    stored before the stream existed). ``reactions``: by emoji in code point order (the
    same on both backends, whatever the database's collation), each with its user ids
    ascending; none on a deleted message."""

    position: int = 0
    reply_to: int | None = None
    edited_at: datetime | None = None
    deleted: bool = False
    reactions: tuple[Reaction, ...] = ()


@attrs.frozen
class StreamEvent:
    """One committed event of the stream, in the order of ``position``.

    Positions are handed out in commit order across every writer (docs/decisions/0004):
    once an event at ``position`` is visible, every event below it is visible too.

    - Audience: ``group_id`` for an event of a group (every member sees it), else
      ``user_ids`` (both users of a direct conversation; the author alone for
      ``read_receipt`` and ``status``).
    - ``actor_id``: who caused it (the author of a message, the editor, the deleter,
      the reactor, the reader; None for ``status``).
    - ``data``: the kind's own facts, JSON-shaped: ``message_edited`` ``{"message",
      "edited_at"}`` (ISO-8601), ``reaction`` ``{"emoji", "op"}``, ``group_read``
      ``{"message_id"}`` (the marker now in force), ``status`` ``{"status"}``,
      ``read_receipt`` ``{"author_id"}``; ``{}`` for the others.
    - ``direct`` / ``group``: for ``message`` and ``group_message`` read back from
      storage, the message as it is now (edits applied, a tombstone if deleted,
      reactions); None on events built in memory from a commit.
    """

    position: int
    kind: StreamKind
    user_ids: tuple[int, ...] = ()
    group_id: int | None = None
    message_id: int | None = None
    actor_id: int | None = None
    data: dict[str, Any] = attrs.field(factory=dict)
    created_at: datetime | None = None
    direct: DirectMessage | None = None
    group: GroupMessage | None = None


@attrs.frozen
class StreamState:
    """The stream as storage has it now.

    ``epoch`` names this database's stream (a cursor of another epoch is unknown);
    ``head`` is the newest committed position; ``swept_through`` the newest position
    removed by retention (a cursor below it has lost its place)."""

    epoch: str
    head: int
    swept_through: int


@attrs.frozen
class ConversationKey:
    """Where a conversation sorts in a user's list: newest ``position`` first, then
    ``kind`` and ``peer_id`` (so there are no ties)."""

    position: int
    kind: MessageKind
    peer_id: int


@attrs.frozen
class Conversation:
    """One entry of a user's conversation list.

    ``peer_id``: the other user (direct) or the group. ``name``: the other user's
    username or the group's name. ``last_activity``: the newest message's timestamp,
    or (a group without messages) when the user joined."""

    kind: MessageKind
    peer_id: int
    name: str
    last_message: DirectMessage | GroupMessage | None
    unread_count: int
    last_read_message_id: int | None
    last_activity: datetime
    key: ConversationKey


@attrs.frozen
class BlockRelations:
    """Who a user blocks and who blocks them (``user_blocks``, both directions)."""

    blocks: frozenset[int] = frozenset()
    blocked_by: frozenset[int] = frozenset()

    @property
    def either(self) -> frozenset[int]:
        """Everyone presence and typing do not pass to or from."""
        return self.blocks | self.blocked_by


@attrs.frozen
class Mute:
    """A muted conversation of a user: ``conversation_id`` is the other user (``direct``)
    or the group; ``muted_until`` None means until unmuted."""

    kind: MessageKind
    conversation_id: int
    muted_until: datetime | None
