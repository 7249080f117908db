"""The one storage interface both backends implement.

Contract for implementers:

- Every method is async and safe to call from many Trio tasks at once.
- Nothing blocks the event loop: SQLite work runs in a worker thread.
- A method that returns has committed its writes (durable per the backend's
  settings).
- Driver errors never escape. A call raises one of ``storage.errors``:

  - ``InvalidData``: the database refuses the data itself (text with NUL or a lone
    surrogate, an integer outside signed 64 bits, a reference to a user, group or message
    that does not exist, any other rule of the schema). Nothing was written. A batch
    method (``store_direct_messages``, ``store_group_messages``) that raises it wrote none
    of the batch, so a caller may store the members one by one to find the offender and
    still store the others.
  - ``Conflict``: a uniqueness rule refused the write. Nothing was written.
  - ``StorageUnavailable``: the database cannot be reached, failed, or did not answer
    within the timeout. Whether a write was committed is unknown (the answer can be lost
    after the commit); message writes are idempotent per ``(author_id, client_id)``, so
    resending with the same ``client_id`` is safe.

- Lookups by a value no row can hold (an id outside signed 64 bits, text with NUL) find
  nothing, without asking the database: None, an empty collection, or False. Bounds
  (``before``, ``after_id``, ``limit``, a read position) past that range act as its end.
- Both backends behave alike in all of the above (``values.py`` checks inputs before
  either database sees them).
- Lists come back in ascending id order unless a docstring says otherwise.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from datetime import datetime

from hubbub.storage.records import (
    ApiKey,
    BlockRelations,
    Conversation,
    ConversationKey,
    DirectMessage,
    Group,
    GroupMember,
    GroupMessage,
    MemberRole,
    MessageKind,
    Mute,
    NewDirectMessage,
    NewGroupMessage,
    SpentRefreshToken,
    StoredDirect,
    StoredGroup,
    StreamEvent,
    StreamState,
    User,
    UserRef,
)


class Storage(abc.ABC):
    """Users, direct messages, groups and read state."""

    #: ``"sqlite"`` or ``"postgres"``; shown in logs and health.
    backend: str

    # -- lifecycle -------------------------------------------------------

    @abc.abstractmethod
    async def migrate(self) -> int:
        """Apply every pending migration, in order, each in its own transaction.

        Returns the schema version now in force. Safe to run concurrently from
        several processes (PostgreSQL: an advisory lock; SQLite: an exclusive
        transaction)."""

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """The highest applied migration, 0 on an empty database."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Return if the database answers a trivial query, else raise ``StorageUnavailable``."""

    # -- users -----------------------------------------------------------

    @abc.abstractmethod
    async def create_user(self, username: str, email: str, password_hash: str) -> User:
        """Insert a user. Raises ``Conflict("username")`` or ``Conflict("email")``, and
        ``InvalidData`` for text that cannot be stored.

        Usernames and emails are unique case-insensitively."""

    @abc.abstractmethod
    async def user_by_id(self, user_id: int) -> User | None: ...

    @abc.abstractmethod
    async def user_by_username(self, username: str) -> User | None:
        """Case-insensitive lookup."""

    @abc.abstractmethod
    async def list_users(self) -> list[UserRef]:
        """Every user, by id."""

    @abc.abstractmethod
    async def usernames(self, user_ids: Iterable[int]) -> dict[int, str]:
        """The usernames of those of ``user_ids`` that exist."""

    @abc.abstractmethod
    async def set_last_seen(self, user_id: int, when: datetime) -> None: ...

    # -- integrations: provisioning and server API keys (integrations.py) -------

    @abc.abstractmethod
    async def user_by_external_id(self, external_id: str) -> User | None:
        """The user the embedding product knows as ``external_id`` (exact match)."""

    @abc.abstractmethod
    async def provision_user(
        self,
        *,
        username: str,
        external_id: str | None,
        email: str | None = None,
        password_hash: str | None = None,
    ) -> tuple[User, bool]:
        """The user of ``external_id`` and whether this call created it: an existing one is
        answered as it is (``False``, whatever the other arguments), else it is created
        (``True``). Of concurrent calls for one new ``external_id``, one creates it and the
        others answer it. Raises ``Conflict("username")`` or ``Conflict("email")`` as
        ``create_user`` does, and ``InvalidData`` for text that cannot be stored. Without an
        email the user has none (``User.email`` None); without a password hash no password
        logs it in (``User.password_hash`` None). ``external_id=None``: a user the product
        knows by no id of its own, always created."""

    @abc.abstractmethod
    async def create_api_key(self, name: str, key_hash: str) -> ApiKey:
        """Record a new key by its SHA-256 hex ``key_hash``. ``Conflict("api_key")`` if a
        live key already has ``name`` (a revoked key's name may be used again)."""

    @abc.abstractmethod
    async def api_keys(self) -> list[ApiKey]:
        """Every key, live and revoked, by id."""

    @abc.abstractmethod
    async def revoke_api_key(self, name: str) -> bool:
        """Revoke the live key named ``name``; False if there is none."""

    @abc.abstractmethod
    async def live_api_key(self, key_hash: str) -> ApiKey | None:
        """The key with that hash, if it exists and is not revoked."""

    # -- direct messages -------------------------------------------------

    @abc.abstractmethod
    async def store_direct_messages(
        self, batch: Sequence[NewDirectMessage], delivered_ids: Sequence[int] = ()
    ) -> list[StoredDirect]:
        """Store a batch in ONE transaction (PostgreSQL: one round trip) and answer per input,
        in input order.

        New rows get status ``pending``. An input whose ``(author_id, client_id)`` already
        exists (stored earlier, or earlier in this same batch) stores nothing and answers
        the first stored row with ``created=False``. ``client_id=None`` is never a duplicate.
        ``delivered_ids`` are marked ``delivered`` (if still ``pending``) in the same
        transaction, so the writer can piggyback status updates on inserts.

        Raises ``InvalidData`` if any message cannot be stored (e.g. a NUL in its body, or
        an unknown recipient); then nothing of the call was written, ``delivered_ids``
        included."""

    @abc.abstractmethod
    async def mark_delivered(self, message_ids: Sequence[int]) -> None:
        """Set ``delivered`` on those that are still ``pending`` (never downgrades ``read``)."""

    @abc.abstractmethod
    async def direct_message(self, message_id: int) -> DirectMessage | None: ...

    @abc.abstractmethod
    async def direct_by_client_id(self, author_id: int, client_id: str) -> DirectMessage | None:
        """The direct message ``author_id`` stored under ``client_id``, if any."""

    @abc.abstractmethod
    async def mark_read(self, message_id: int) -> DirectMessage | None:
        """Set ``read`` and return the updated row; None if no such message."""

    @abc.abstractmethod
    async def pending_direct_messages(self, recipient_id: int, limit: int) -> list[DirectMessage]:
        """The oldest ``limit`` messages to ``recipient_id`` still ``pending``, ascending id."""

    @abc.abstractmethod
    async def direct_history(
        self, user_id: int, other_id: int, before: int | None, limit: int
    ) -> list[DirectMessage]:
        """The conversation between the two users (both directions): the newest ``limit``
        messages with id < ``before`` (or the newest overall), returned in ascending id."""

    @abc.abstractmethod
    async def conversation_partners(self, user_id: int) -> set[int]:
        """Every other user that has exchanged a direct message with ``user_id`` (either way)."""

    # -- groups ----------------------------------------------------------

    @abc.abstractmethod
    async def create_group(self, name: str, creator_id: int) -> Group:
        """Create a group; the creator joins it as ``admin`` in the same transaction.
        ``InvalidData`` for an unknown creator or a name that cannot be stored."""

    @abc.abstractmethod
    async def group(self, group_id: int) -> Group | None: ...

    @abc.abstractmethod
    async def add_member(self, group_id: int, user_id: int, role: MemberRole = "member") -> None:
        """Raises ``Conflict("member")`` if already a member, ``InvalidData`` for an unknown
        group or user. A new member's last read is the group's newest message id at join
        time (no backlog of history as unread)."""

    @abc.abstractmethod
    async def remove_member(self, group_id: int, user_id: int) -> bool:
        """True if a membership was removed."""

    @abc.abstractmethod
    async def set_member_role(self, group_id: int, user_id: int, role: MemberRole) -> bool:
        """True if the member exists (and now has ``role``)."""

    @abc.abstractmethod
    async def group_members(self, group_id: int) -> list[GroupMember]:
        """Members by user id."""

    @abc.abstractmethod
    async def member(self, group_id: int, user_id: int) -> GroupMember | None: ...

    @abc.abstractmethod
    async def groups_of(self, user_id: int) -> list[Group]:
        """The groups ``user_id`` belongs to, by group id."""

    @abc.abstractmethod
    async def co_members(self, user_id: int) -> set[int]:
        """Every user sharing at least one group with ``user_id`` (excluding ``user_id``)."""

    @abc.abstractmethod
    async def store_group_messages(self, batch: Sequence[NewGroupMessage]) -> list[StoredGroup]:
        """As ``store_direct_messages``, for group messages (idempotent per author/client_id);
        ``InvalidData`` for an unknown group or author, or text that cannot be stored."""

    @abc.abstractmethod
    async def group_message(self, message_id: int) -> GroupMessage | None: ...

    @abc.abstractmethod
    async def group_by_client_id(self, author_id: int, client_id: str) -> GroupMessage | None:
        """The group message ``author_id`` stored under ``client_id``, if any."""

    @abc.abstractmethod
    async def group_history(
        self, group_id: int, before: int | None, limit: int
    ) -> list[GroupMessage]:
        """The newest ``limit`` messages with id < ``before`` (or newest), ascending id."""

    @abc.abstractmethod
    async def group_messages_after(
        self, group_id: int, after_id: int, limit: int
    ) -> list[GroupMessage]:
        """The OLDEST ``limit`` messages with id > ``after_id``, ascending id."""

    @abc.abstractmethod
    async def advance_group_read(self, group_id: int, user_id: int, message_id: int) -> int | None:
        """Move the member's last read to ``min(message_id, newest id in the group)``, never
        backwards. Returns the last read now in force, or None if not a member."""

    # -- v2: rich messages ------------------------------------------------
    #
    # A message is named by ``kind`` and ``message_id`` (and, for a group message, the
    # ``group_id`` it must belong to). Each change below commits with its stream event,
    # in one transaction, and answers that event; None means "not allowed" and nothing
    # was written: no such message (or not of that group), a deleted one, or a caller
    # the rule does not admit.

    @abc.abstractmethod
    async def edit_message(
        self, kind: MessageKind, message_id: int, group_id: int | None, editor_id: int, body: str
    ) -> StreamEvent | None:
        """The author replaces the text (the image stays); sets ``edited_at``. Event
        ``message_edited`` with data ``{"message": body, "edited_at": iso}``."""

    @abc.abstractmethod
    async def delete_message(
        self, kind: MessageKind, message_id: int, group_id: int | None, deleter_id: int
    ) -> StreamEvent | None:
        """The author (or, for a group message, a group admin) turns the message into a
        tombstone: body and image_url become NULL, ``deleted`` true; id, author and
        timestamp stay. An unread deleted message stops counting as unread. Event
        ``message_deleted``, ``actor_id`` the deleter."""

    @abc.abstractmethod
    async def react(
        self,
        kind: MessageKind,
        message_id: int,
        group_id: int | None,
        user_id: int,
        emoji: str,
        add: bool,
    ) -> StreamEvent | None:
        """Add or remove ``emoji`` by ``user_id`` (a participant: either user of a direct
        message, a member of the group). A set: adding twice keeps one, removing what is
        not there changes nothing; either way the event ``reaction`` (data ``{"emoji",
        "op": "add"|"remove"}``) is appended."""

    @abc.abstractmethod
    async def read_direct(self, message_id: int, reader_id: int) -> StreamEvent | None:
        """The recipient ``reader_id`` read the message: status ``read``, the
        conversation's unread count and read marker follow, and a ``read_receipt``
        event (audience: the author; data ``{"author_id"}``) is appended. None if there
        is no such message or ``reader_id`` is not its recipient."""

    @abc.abstractmethod
    async def read_group(self, group_id: int, user_id: int, message_id: int) -> StreamEvent | None:
        """As ``advance_group_read`` (never backwards, at most the newest id), then the
        member's unread count is what is left after the marker; appends ``group_read``
        (data ``{"message_id": the marker now in force}``). None if not a member."""

    @abc.abstractmethod
    async def deliver_pending(self, message_ids: Sequence[int]) -> list[StreamEvent]:
        """Mark those still ``pending`` delivered (offline catch-up) and append a
        ``status`` event (audience: the author; data ``{"status": "delivered"}``) for each
        that changed, in id order; answers those events."""

    # -- v2: the stream ------------------------------------------------------

    @abc.abstractmethod
    async def stream_state(self) -> StreamState: ...

    @abc.abstractmethod
    async def stream_for_user(
        self, user_id: int, after: int, upto: int | None, limit: int
    ) -> list[StreamEvent]:
        """The oldest ``limit`` events the user is in the audience of, with
        ``after < position <= upto`` (no upper bound if None), ascending position. Group
        events only of groups the user belongs to now, and only after the user joined.
        Message events carry the message as it is now (``direct``/``group``)."""

    @abc.abstractmethod
    async def stream_after(self, after: int, limit: int) -> list[StreamEvent]:
        """The oldest ``limit`` events of every audience with ``position > after``,
        ascending: what a node's stream tail reads. Message events carry the message."""

    @abc.abstractmethod
    async def sweep_stream(self, older_than: datetime, limit: int) -> int:
        """Delete up to ``limit`` of the oldest events created before ``older_than``;
        ``swept_through`` becomes the newest position deleted. Returns how many."""

    # -- v2: conversations ---------------------------------------------------

    @abc.abstractmethod
    async def conversations(
        self, user_id: int, before: ConversationKey | None, limit: int
    ) -> list[Conversation]:
        """The user's conversations, newest activity first (``ConversationKey`` order,
        descending), those sorting after ``before`` if given. Unread counts come from
        counters kept on write, never from scanning history."""

    # -- blocks and mutes (blocks.py) ------------------------------------------

    @abc.abstractmethod
    async def block(self, blocker_id: int, blocked_id: int) -> bool:
        """``blocker_id`` blocks ``blocked_id``; True if that is new (blocking twice keeps
        one). ``InvalidData`` for an unknown user."""

    @abc.abstractmethod
    async def unblock(self, blocker_id: int, blocked_id: int) -> bool:
        """True if there was such a block (now gone)."""

    @abc.abstractmethod
    async def blocked_users(self, blocker_id: int) -> list[UserRef]:
        """The users ``blocker_id`` blocks, by id."""

    @abc.abstractmethod
    async def is_blocked(self, blocker_id: int, blocked_id: int) -> bool: ...

    @abc.abstractmethod
    async def block_relations(self, user_id: int) -> BlockRelations:
        """Whom ``user_id`` blocks and who blocks ``user_id``, in one read."""

    @abc.abstractmethod
    async def mute(
        self, user_id: int, kind: MessageKind, conversation_id: int, until: datetime | None
    ) -> None:
        """Mute (or re-mute, replacing the end) a conversation of ``user_id`` until
        ``until`` (None: until unmuted). The conversation need not exist yet; ids are not
        checked against users or groups here (the caller does). ``InvalidData`` for an
        unknown ``user_id``."""

    @abc.abstractmethod
    async def unmute(self, user_id: int, kind: MessageKind, conversation_id: int) -> bool:
        """True if the conversation was muted (expired or not) and no longer is."""

    @abc.abstractmethod
    async def mutes(self, user_id: int, at: datetime) -> list[Mute]:
        """The user's mutes in force at ``at`` (unending, or ending after it), by kind
        then conversation id."""

    @abc.abstractmethod
    async def is_muted(
        self, user_id: int, kind: MessageKind, conversation_id: int, at: datetime
    ) -> bool:
        """Whether that conversation of ``user_id`` is muted at ``at``."""

    # -- refresh tokens --------------------------------------------------

    @abc.abstractmethod
    async def record_refresh_token(
        self, jti: str, user_id: int, family_id: str, expires_at: datetime
    ) -> None:
        """Remember a refresh token just issued, unspent. ``family_id`` names the login it
        descends from: a new one at login, its parent's on rotation. ``InvalidData`` for an
        unknown user, a ``jti`` already recorded, or text that cannot be stored."""

    @abc.abstractmethod
    async def spend_refresh_token(self, jti: str) -> SpentRefreshToken | None:
        """Spend the token ``jti``, atomically: of two spends of one token, exactly one finds
        it unspent.

        - Unspent, unexpired, its family not revoked: now spent; answers ``reused=False``.
        - Spent before: a replay; every token of its family is revoked (and any issued
          into it later is refused); answers ``reused=True``.
        - Unknown, expired, or of a revoked family: None."""

    @abc.abstractmethod
    async def revoke_refresh_family(self, family_id: str) -> None:
        """Revoke every token of the family (a logout): none of them, nor any issued into
        it later, can be spent."""

    @abc.abstractmethod
    async def revoke_user_refresh_tokens(self, user_id: int) -> None:
        """Revoke every family of ``user_id`` (logged out everywhere); later logins start
        new families, which this does not touch."""
