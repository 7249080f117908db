"""Plain records that cross the storage boundary.

Every timestamp is a timezone-aware UTC ``datetime``. Records are frozen: a
caller that wants a changed record asks storage for a new one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import attrs

MessageStatus = Literal["pending", "delivered", "read"]
MemberRole = Literal["admin", "member"]


@attrs.frozen
class User:
    id: int
    username: str
    email: str
    password_hash: str
    created_at: datetime
    last_seen: datetime | None


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


@attrs.frozen
class GroupMessage:
    id: int
    group_id: int
    author_id: int
    body: str | None
    image_url: str | None
    client_id: str | None
    created_at: datetime


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
