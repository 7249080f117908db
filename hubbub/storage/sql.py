"""The SQL both backends share, written once.

- The column lists every query selects, in the order the records in ``records.py`` take.
- ``Queries``: every statement ``SqlStorage`` runs. Those that read the same in both
  dialects are written once, in PostgreSQL's spelling; ``sqlite_queries`` translates
  them once, at import: SQLite accepts numbered parameters (``?NNN``), so ``$n`` becomes
  ``?n`` (a parameter used twice is passed once to both), and it spells
  ``least``/``greatest`` as its multi-argument ``min``/``max``. The few a dialect
  spells its own way, each backend gives.
- Row mappers, taking the backend's timestamp converter (SQLite stores integer
  microseconds; asyncpg returns ``datetime``).
- ``SqlStorage``: the interface methods that are nothing but one of those statements
  (after the checks of ``values.py``: a lookup by an id or text no row can hold finds
  nothing without asking the database).

What is left in ``sqlite.py`` and ``postgres.py`` is what really differs: case-insensitive
matching, id lists, timestamps the database fills in itself, transactions, the message
batches and the error translation.
"""

from __future__ import annotations

import abc
import functools
import re
from collections.abc import Callable, Generator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import attrs

from hubbub.storage.interface import Storage
from hubbub.storage.records import (
    DirectMessage,
    Group,
    GroupMember,
    GroupMessage,
    MemberRole,
    MessageKind,
    MessageState,
    Reaction,
    User,
    UserRef,
)
from hubbub.storage.values import (
    MAX_INT,
    check_ids,
    check_text,
    clamp,
    fits,
    possible_ids,
    storable,
)

USER = "id, username, email, password_hash, created_at, last_seen, external_id"
#: What the NOT NULL columns hold for a provisioned user without an email or a password
#: (``integrations.py`` says why these); ``to_user`` reads them back as None.
NO_EMAIL_PREFIX = "no-email:"
NO_PASSWORD = "!no-password"
#: A message's v2 state (``MessageState`` but its reactions, which come from their table).
STATE = "position, reply_to, edited_at, deleted_at"
DIRECT = f"id, author_id, recipient_id, body, image_url, client_id, status, created_at, {STATE}"
GROUP = "id, name, created_by, created_at"
GROUP_MESSAGE = f"id, group_id, author_id, body, image_url, client_id, created_at, {STATE}"
MEMBER = (
    "m.group_id, m.user_id, u.username, m.role, m.last_read_message_id, m.joined_at"
    " FROM group_members m JOIN users u ON u.id = m.user_id"
)


def prefixed(columns: str, alias: str) -> str:
    """``columns`` (one of the lists above) each qualified by ``alias``."""
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


#: Every token of the family of the token ``$1`` (none if unknown), for ``refresh_tokens``.
REFRESH_FAMILY = (
    "SELECT jti, user_id, family_id, expires_at, spent_at, revoked_at FROM refresh_tokens"
    " WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE jti = $1)"
)


@attrs.frozen(kw_only=True)
class Queries:
    """The statements of ``SqlStorage``. The defaults are the shared ones, in PostgreSQL's
    spelling."""

    # Each dialect's own; ``$1``/``?1`` of the id list is the backend's ``_id_array``.
    user_by_username: str
    usernames: str
    #: ``REFRESH_FAMILY``, and whatever keeps those rows from changing until the commit.
    refresh_family: str
    # Writes that record when they happened: PostgreSQL fills the time in itself, SQLite
    # takes it as one more parameter (``SqlStorage._time_params``).
    create_user: str
    add_member: str

    ping: str = "SELECT 1"
    user_by_id: str = f"SELECT {USER} FROM users WHERE id = $1"
    list_users: str = "SELECT id, username FROM users ORDER BY id"
    set_last_seen: str = "UPDATE users SET last_seen = $2 WHERE id = $1"
    direct_message: str = f"SELECT {DIRECT} FROM direct_messages WHERE id = $1"
    direct_by_client_id: str = (
        f"SELECT {DIRECT} FROM direct_messages WHERE author_id = $1 AND client_id = $2"
    )
    # The expressions match direct_messages_conversation_idx, so this is one index range.
    direct_history: str = (
        f"SELECT {DIRECT} FROM direct_messages WHERE least(author_id, recipient_id) = $1"
        " AND greatest(author_id, recipient_id) = $2 AND id < $3 ORDER BY id DESC LIMIT $4"
    )
    pending_direct_messages: str = (
        f"SELECT {DIRECT} FROM direct_messages WHERE recipient_id = $1"
        " AND status = 'pending' ORDER BY id LIMIT $2"
    )
    # One range of the conversation rows' primary key (every stored message keeps a row
    # for each side): never a read of the user's whole history, which grows without bound.
    conversation_partners: str = "SELECT other_id FROM direct_conversations WHERE user_id = $1"
    group: str = f"SELECT {GROUP} FROM groups WHERE id = $1"
    remove_member: str = (
        "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2 RETURNING 1"
    )
    set_member_role: str = (
        "UPDATE group_members SET role = $3 WHERE group_id = $1 AND user_id = $2 RETURNING 1"
    )
    group_members: str = f"SELECT {MEMBER} WHERE m.group_id = $1 ORDER BY m.user_id"
    member: str = f"SELECT {MEMBER} WHERE m.group_id = $1 AND m.user_id = $2"
    groups_of: str = (
        "SELECT g.id, g.name, g.created_by, g.created_at FROM groups g"
        " JOIN group_members m ON m.group_id = g.id WHERE m.user_id = $1 ORDER BY g.id"
    )
    co_members: str = (
        "SELECT DISTINCT other.user_id FROM group_members mine"
        " JOIN group_members other ON other.group_id = mine.group_id"
        " WHERE mine.user_id = $1 AND other.user_id <> $1"
    )
    group_message: str = f"SELECT {GROUP_MESSAGE} FROM group_messages WHERE id = $1"
    group_by_client_id: str = (
        f"SELECT {GROUP_MESSAGE} FROM group_messages WHERE author_id = $1 AND client_id = $2"
    )
    group_history: str = (
        f"SELECT {GROUP_MESSAGE} FROM group_messages WHERE group_id = $1 AND id < $2"
        " ORDER BY id DESC LIMIT $3"
    )
    group_messages_after: str = (
        f"SELECT {GROUP_MESSAGE} FROM group_messages WHERE group_id = $1 AND id > $2"
        " ORDER BY id LIMIT $3"
    )
    record_refresh_token: str = (
        "INSERT INTO refresh_tokens (jti, user_id, family_id, issued_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5)"
    )
    spend_refresh_token: str = "UPDATE refresh_tokens SET spent_at = $2 WHERE jti = $1"
    revoke_refresh_family: str = (
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL"
    )
    revoke_user_refresh_tokens: str = (
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL"
    )


_SQLITE_SPELLING = [
    # An id list is one parameter: a PostgreSQL array, a JSON array for SQLite.
    (re.compile(r"= ANY\(\$(\d+)::bigint\[\]\)"), r"IN (SELECT value FROM json_each(?\1))"),
    # A subquery's ids as one array is PostgreSQL's way to a single index probe per id.
    (re.compile(r"= ANY\(ARRAY\((SELECT [^()]*)\)\)"), r"IN (\1)"),
    # The hint is for PostgreSQL's planner; SQLite before 3.35 does not know the word.
    (re.compile(r" AS MATERIALIZED \("), " AS ("),
    # BEGIN IMMEDIATE holds the write lock already.
    (re.compile(r" FOR NO KEY UPDATE\b"), ""),
    (re.compile(r"\$(\d+)"), r"?\1"),
    (re.compile(r"\bleast\("), "min("),
    (re.compile(r"\bgreatest\("), "max("),
]


@functools.cache
def for_sqlite(statement: str) -> str:
    """A shared statement in SQLite's spelling: the same parameters and functions."""
    for pattern, replacement in _SQLITE_SPELLING:
        statement = pattern.sub(replacement, statement)
    return statement


_SHARED = [f for f in attrs.fields(Queries) if f.default is not attrs.NOTHING]


def sqlite_queries(**own: str) -> Queries:
    """The shared statements in SQLite's spelling, and SQLite's ``own``."""
    return Queries(**{f.name: for_sqlite(str(f.default)) for f in _SHARED}, **own)


#: A backend's conversion of a stored timestamp to an aware UTC ``datetime``.
Stamp = Callable[[Any], datetime]


R = TypeVar("R")
T = TypeVar("T")

#: One statement of a ``Plan`` and its parameters. Statements are in PostgreSQL's spelling;
#: SQLite runs them through ``for_sqlite``.
Step = tuple[str, tuple[Any, ...]]
#: A transaction (or a read of several statements) written once for both backends: a
#: generator that yields each ``Step`` and is sent its rows back; its return value is the
#: answer. A backend runs it with ``SqlStorage._plan``.
Plan = Generator[Step, Sequence[Sequence[Any]], T]


def drive(plan: Plan[T], execute: Callable[[str, tuple[Any, ...]], Sequence[Sequence[Any]]]) -> T:
    """Run ``plan`` with a synchronous ``execute(statement, params) -> rows``."""
    try:
        step = next(plan)
        while True:
            step = plan.send(execute(*step))
    except StopIteration as done:
        return cast(T, done.value)


def _build(record: type[R], *columns: Any) -> R:
    """A record from a row whose columns are its fields, in order (the column lists
    above are written so)."""
    return cast(Any, record)(*columns)


def to_user(row: Sequence[Any], stamp: Stamp) -> User:
    user_id, username, email, password_hash, created_at, last_seen, external_id = row
    return User(
        user_id,
        username,
        None if email.startswith(NO_EMAIL_PREFIX) else email,
        None if password_hash == NO_PASSWORD else password_hash,
        stamp(created_at),
        None if last_seen is None else stamp(last_seen),
        external_id,
    )


def to_state(row: Sequence[Any], stamp: Stamp) -> MessageState:
    """The ``STATE`` columns; no reactions yet (``with_reactions`` adds them)."""
    position, reply_to, edited_at, deleted_at = row
    edited = None if edited_at is None else stamp(edited_at)
    return MessageState(position, reply_to, edited, deleted_at is not None)


def to_direct(row: Sequence[Any], stamp: Stamp) -> DirectMessage:
    """A ``DIRECT`` row (a deleted message's body and image_url are NULL already)."""
    return _build(DirectMessage, *row[:7], stamp(row[7]), to_state(row[8:12], stamp))


def to_group(row: Sequence[Any], stamp: Stamp) -> Group:
    return _build(Group, *row[:-1], stamp(row[-1]))


def to_group_message(row: Sequence[Any], stamp: Stamp) -> GroupMessage:
    return _build(GroupMessage, *row[:6], stamp(row[6]), to_state(row[7:11], stamp))


Message = TypeVar("Message", DirectMessage, GroupMessage)

#: The reactions of a list of messages, ``$1`` their ids: ``message_id, emoji, user_id``.
REACTIONS = {
    "direct": "SELECT message_id, emoji, user_id FROM direct_reactions"
    " WHERE message_id = ANY($1::bigint[])",
    "group": "SELECT message_id, emoji, user_id FROM group_reactions"
    " WHERE message_id = ANY($1::bigint[])",
}


def reaction_ids(messages: Iterable[DirectMessage | GroupMessage | None]) -> list[int]:
    """The ids of those messages whose reactions are shown (a tombstone shows none)."""
    return sorted({m.id for m in messages if m is not None and not m.state.deleted})


def with_reactions(messages: list[Message], rows: Iterable[Sequence[Any]]) -> list[Message]:
    """``messages`` with their reactions from the ``REACTIONS`` rows: by emoji in code point
    order, each with its user ids ascending (the same on both backends, whatever the
    database's collation). A deleted message gets none."""
    found: dict[int, dict[str, list[int]]] = {}
    for message_id, emoji, user_id in rows:
        found.setdefault(message_id, {}).setdefault(emoji, []).append(user_id)
    answer = []
    for message in messages:
        emojis = found.get(message.id)
        if emojis and not message.state.deleted:
            reactions = tuple(
                Reaction(emoji, tuple(sorted(users))) for emoji, users in sorted(emojis.items())
            )
            message = attrs.evolve(message, state=attrs.evolve(message.state, reactions=reactions))
        answer.append(message)
    return answer


def to_member(row: Sequence[Any], stamp: Stamp) -> GroupMember:
    return _build(GroupMember, *row[:-1], stamp(row[-1]))


class SqlStorage(Storage):
    """The interface methods that run one statement of ``Queries`` each.

    A backend provides ``_rows`` (one statement, autocommitted), its dialect of the
    statements as ``_sql``, its timestamp converters and ``_time_params``."""

    _sql: Queries

    @abc.abstractmethod
    async def _rows(self, statement: str, *args: Any) -> Sequence[Sequence[Any]]:
        """Run one statement on its own; its rows. Raises only ``StorageError``s."""

    @staticmethod
    @abc.abstractmethod
    def _stamp(value: Any) -> datetime:
        """A stored timestamp as an aware UTC ``datetime``."""

    @staticmethod
    @abc.abstractmethod
    def _stored_time(when: datetime) -> Any:
        """An aware ``datetime`` as the backend stores it."""

    @staticmethod
    @abc.abstractmethod
    def _id_array(ids: list[int]) -> Any:
        """``ids`` as the one parameter that stands for a list of them, however long."""

    @abc.abstractmethod
    def _time_params(self) -> tuple[Any, ...]:
        """What follows a write's own parameters for the times the database does not fill
        in itself: none where it does (PostgreSQL's ``DEFAULT now()``), else the time now."""

    @abc.abstractmethod
    async def _plan(self, make: Callable[[], Plan[T]], *, writes: bool = True) -> T:
        """Run the plan ``make()`` to its answer on one connection: with ``writes``, in one
        transaction that commits when the plan returns and rolls back if it raises;
        without, each statement on its own. A backend may run a fresh ``make()`` again
        after a rollback it knows to be worth retrying (PostgreSQL: a deadlock or
        serialization failure). Raises only ``StorageError``s."""

    def _reactions_of(self, kind: MessageKind, messages: list[Message]) -> Plan[list[Message]]:
        """``messages`` with their reactions: one more statement, if any can have some."""
        if not (ids := reaction_ids(messages)):
            return messages
        rows = yield (REACTIONS[kind], (self._id_array(ids),))
        return with_reactions(messages, rows)

    async def _reacted(self, kind: MessageKind, messages: list[Message]) -> list[Message]:
        if not reaction_ids(messages):
            return messages
        return await self._plan(lambda: self._reactions_of(kind, messages), writes=False)

    async def _first_message(
        self, kind: MessageKind, statement: str, *args: Any
    ) -> DirectMessage | GroupMessage | None:
        mapper = to_direct if kind == "direct" else to_group_message
        found = await self._all(mapper, statement, *args)
        return (await self._reacted(kind, found))[0] if found else None

    async def _first(self, mapper: Callable[[Any, Stamp], Any], statement: str, *args: Any) -> Any:
        rows = await self._rows(statement, *args)
        return mapper(rows[0], self._stamp) if rows else None

    async def _all(self, mapper: Callable[[Any, Stamp], Any], statement: str, *args: Any) -> list:
        return [mapper(row, self._stamp) for row in await self._rows(statement, *args)]

    async def ping(self) -> None:
        await self._rows(self._sql.ping)

    async def user_by_id(self, user_id: int) -> User | None:
        if not fits(user_id):
            return None
        return await self._first(to_user, self._sql.user_by_id, user_id)

    async def user_by_username(self, username: str) -> User | None:
        if not storable(username):
            return None
        return await self._first(to_user, self._sql.user_by_username, username)

    async def usernames(self, user_ids: Iterable[int]) -> dict[int, str]:
        if not (ids := possible_ids(user_ids)):
            return {}
        rows = await self._rows(self._sql.usernames, self._id_array(ids))
        return {row[0]: row[1] for row in rows}

    async def list_users(self) -> list[UserRef]:
        return [UserRef(*row) for row in await self._rows(self._sql.list_users)]

    async def set_last_seen(self, user_id: int, when: datetime) -> None:
        stored_time = self._stored_time(when)
        if fits(user_id):
            await self._rows(self._sql.set_last_seen, user_id, stored_time)

    async def direct_message(self, message_id: int) -> DirectMessage | None:
        if not fits(message_id):
            return None
        return await self._first_message("direct", self._sql.direct_message, message_id)  # type: ignore[return-value]

    async def direct_by_client_id(self, author_id: int, client_id: str) -> DirectMessage | None:
        if not (fits(author_id) and storable(client_id)):
            return None
        return await self._first_message(  # type: ignore[return-value]
            "direct", self._sql.direct_by_client_id, author_id, client_id
        )

    async def direct_history(
        self, user_id: int, other_id: int, before: int | None, limit: int
    ) -> list[DirectMessage]:
        if not fits(user_id, other_id):
            return []
        newest_first = await self._all(
            to_direct,
            self._sql.direct_history,
            min(user_id, other_id),
            max(user_id, other_id),
            MAX_INT if before is None else clamp(before),
            clamp(max(limit, 0)),
        )
        return await self._reacted("direct", newest_first[::-1])

    async def pending_direct_messages(self, recipient_id: int, limit: int) -> list[DirectMessage]:
        if not fits(recipient_id):
            return []
        pending = await self._all(
            to_direct, self._sql.pending_direct_messages, recipient_id, clamp(max(limit, 0))
        )
        return await self._reacted("direct", pending)

    async def conversation_partners(self, user_id: int) -> set[int]:
        if not fits(user_id):
            return set()
        rows = await self._rows(self._sql.conversation_partners, user_id)
        return {row[0] for row in rows} - {user_id}

    async def create_user(self, username: str, email: str, password_hash: str) -> User:
        check_text(username=username, email=email, password_hash=password_hash)
        rows = await self._rows(
            self._sql.create_user, username, email, password_hash, *self._time_params()
        )
        return to_user(rows[0], self._stamp)

    async def group(self, group_id: int) -> Group | None:
        if not fits(group_id):
            return None
        return await self._first(to_group, self._sql.group, group_id)

    async def add_member(self, group_id: int, user_id: int, role: MemberRole = "member") -> None:
        check_ids(group_id=group_id, user_id=user_id)
        await self._rows(self._sql.add_member, group_id, user_id, role, *self._time_params())

    async def remove_member(self, group_id: int, user_id: int) -> bool:
        return fits(group_id, user_id) and bool(
            await self._rows(self._sql.remove_member, group_id, user_id)
        )

    async def set_member_role(self, group_id: int, user_id: int, role: MemberRole) -> bool:
        return fits(group_id, user_id) and bool(
            await self._rows(self._sql.set_member_role, group_id, user_id, role)
        )

    async def group_members(self, group_id: int) -> list[GroupMember]:
        if not fits(group_id):
            return []
        return await self._all(to_member, self._sql.group_members, group_id)

    async def member(self, group_id: int, user_id: int) -> GroupMember | None:
        if not fits(group_id, user_id):
            return None
        return await self._first(to_member, self._sql.member, group_id, user_id)

    async def groups_of(self, user_id: int) -> list[Group]:
        if not fits(user_id):
            return []
        return await self._all(to_group, self._sql.groups_of, user_id)

    async def co_members(self, user_id: int) -> set[int]:
        if not fits(user_id):
            return set()
        return {row[0] for row in await self._rows(self._sql.co_members, user_id)}

    async def group_message(self, message_id: int) -> GroupMessage | None:
        if not fits(message_id):
            return None
        return await self._first_message("group", self._sql.group_message, message_id)  # type: ignore[return-value]

    async def group_by_client_id(self, author_id: int, client_id: str) -> GroupMessage | None:
        if not (fits(author_id) and storable(client_id)):
            return None
        return await self._first_message(  # type: ignore[return-value]
            "group", self._sql.group_by_client_id, author_id, client_id
        )

    async def group_history(
        self, group_id: int, before: int | None, limit: int
    ) -> list[GroupMessage]:
        if not fits(group_id):
            return []
        newest_first = await self._all(
            to_group_message,
            self._sql.group_history,
            group_id,
            MAX_INT if before is None else clamp(before),
            clamp(max(limit, 0)),
        )
        return await self._reacted("group", newest_first[::-1])

    async def group_messages_after(
        self, group_id: int, after_id: int, limit: int
    ) -> list[GroupMessage]:
        if not fits(group_id):
            return []
        after = await self._all(
            to_group_message,
            self._sql.group_messages_after,
            group_id,
            clamp(after_id),
            clamp(max(limit, 0)),
        )
        return await self._reacted("group", after)

    async def record_refresh_token(
        self, jti: str, user_id: int, family_id: str, expires_at: datetime
    ) -> None:
        check_text(jti=jti, family_id=family_id)
        check_ids(user_id=user_id)
        await self._rows(
            self._sql.record_refresh_token,
            jti,
            user_id,
            family_id,
            self._stored_time(datetime.now(UTC)),
            self._stored_time(expires_at),
        )

    async def revoke_refresh_family(self, family_id: str) -> None:
        if storable(family_id):
            now = self._stored_time(datetime.now(UTC))
            await self._rows(self._sql.revoke_refresh_family, family_id, now)

    async def revoke_user_refresh_tokens(self, user_id: int) -> None:
        if fits(user_id):
            now = self._stored_time(datetime.now(UTC))
            await self._rows(self._sql.revoke_user_refresh_tokens, user_id, now)
