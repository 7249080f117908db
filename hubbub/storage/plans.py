"""v2 of the storage, written once for both backends: rich messages, the stream and the
conversation list, as ``sql.Plan``s (generators of statements) that each backend runs in
one transaction (``SqlStorage._plan``).

Positions, and the lock order. Every transaction that appends stream events takes its
positions from the one row of ``stream_head`` (``_append``), and takes that row lock after
every other row lock it needs, so that it holds it until its commit: a second writer (any
node) waits on that row until the first has committed, then continues from the first's new
head. So positions are handed out in commit order, and a reader that has seen position p
never later sees an event below p. The order in which every writer takes its row locks,
so that no two of them can wait on each other:

1. message rows (by ascending id where there are several),
2. conversation rows (``direct_conversations``) and member rows (``group_members``), by
   ascending key,
3. ``stream_head``, last.

(SQLite: a write transaction, BEGIN IMMEDIATE, is exclusive; the order is moot there.)
The message batches follow the same order; PostgreSQL's are single statements
(``pg_batch.py``), SQLite's are in ``sqlite.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from hubbub.storage import sql
from hubbub.storage.records import (
    Conversation,
    ConversationKey,
    DirectMessage,
    MessageKind,
    StreamEvent,
    StreamKind,
    StreamState,
)
from hubbub.storage.sql import DIRECT, GROUP_MESSAGE, Plan, prefixed
from hubbub.storage.values import MAX_INT, MIN_INT, check_text, clamp, fits, possible_ids

#: How many events one INSERT writes at most (9 parameters each).
_EVENTS_PER_INSERT = 500

HEAD = "UPDATE stream_head SET position = position + $1 RETURNING position"
STREAM_STATE = "SELECT epoch, position, swept_through FROM stream_head"
EVENT_COLUMNS = "position, kind, user_a, user_b, group_id, message_id, actor_id, data, created_at"

#: Events with the message of ``message``/``group_message`` events as it is now.
_EVENTS = (
    f"SELECT {prefixed(EVENT_COLUMNS, 'e')}, {prefixed(DIRECT, 'd')},"
    f" {prefixed(GROUP_MESSAGE, 'g')} FROM stream_events e"
    " LEFT JOIN direct_messages d ON e.kind = 'message' AND d.id = e.message_id"
    " LEFT JOIN group_messages g ON e.kind = 'group_message' AND g.id = e.message_id"
)
_EVENT_WIDTH = len(EVENT_COLUMNS.split(","))
_DIRECT_WIDTH = len(DIRECT.split(","))

STREAM_AFTER = _EVENTS + " WHERE e.position > $1 ORDER BY e.position LIMIT $2"

# The user's events: three index ranges (as the author or recipient side of a direct event,
# as a member of a group since joining), each cut at the limit, then merged.
STREAM_FOR_USER = (
    _EVENTS + " WHERE e.position IN ("
    "SELECT position FROM (SELECT position FROM stream_events WHERE user_a = $1"
    " AND position > $2 AND position <= $3 ORDER BY position LIMIT $4) AS a"
    " UNION SELECT position FROM (SELECT position FROM stream_events WHERE user_b = $1"
    " AND position > $2 AND position <= $3 ORDER BY position LIMIT $4) AS b"
    " UNION SELECT position FROM (SELECT s.position FROM group_members m"
    " JOIN stream_events s ON s.group_id = m.group_id AND s.position > m.joined_position"
    " WHERE m.user_id = $1 AND s.position > $2 AND s.position <= $3"
    " ORDER BY s.position LIMIT $4) AS g"
    ") ORDER BY e.position LIMIT $4"
)

SWEEP = (
    "DELETE FROM stream_events WHERE position IN (SELECT position FROM stream_events"
    " WHERE created_at < $1 ORDER BY position LIMIT $2) RETURNING position"
)
SWEPT = "UPDATE stream_head SET swept_through = greatest(swept_through, $1)"

# The user's direct conversations from the key ($2, $3) down (inclusive), newest first:
# one backwards range of direct_conversations_order_idx.
CONVERSATIONS_DIRECT = (
    "SELECT c.last_position, c.other_id, u.username, c.unread_count, c.last_read_message_id,"
    f" {prefixed(DIRECT, 'm')} FROM (SELECT * FROM direct_conversations WHERE user_id = $1"
    " AND (last_position, other_id) <= ($2, $3) ORDER BY last_position DESC, other_id DESC"
    " LIMIT $4) AS c JOIN users u ON u.id = c.other_id"
    " LEFT JOIN direct_messages m ON m.id = c.last_message_id"
    " ORDER BY c.last_position DESC, c.other_id DESC"
)
# The user's groups likewise, by their newest message's position, or the user's join.
CONVERSATIONS_GROUP = (
    "SELECT coalesce(g.last_position, m.joined_position), g.id, g.name, m.unread_count,"
    f" m.last_read_message_id, m.joined_at, {prefixed(GROUP_MESSAGE, 'gm')}"
    " FROM group_members m JOIN groups g ON g.id = m.group_id"
    " LEFT JOIN group_messages gm ON gm.id = g.last_message_id"
    " WHERE m.user_id = $1 AND (coalesce(g.last_position, m.joined_position), g.id) <= ($2, $3)"
    " ORDER BY 1 DESC, 2 DESC LIMIT $4"
)

#: Marks delivered those of ``$1`` still pending, locking them in id order.
DELIVER = (
    "UPDATE direct_messages SET status = 'delivered' WHERE status = 'pending' AND id IN"
    " (SELECT id FROM direct_messages WHERE id = ANY($1::bigint[]) AND status = 'pending'"
    " ORDER BY id FOR NO KEY UPDATE) RETURNING id, author_id"
)

_READ = (
    f"UPDATE direct_messages SET status = 'read' WHERE id = $1 AND status <> 'read'"
    f" RETURNING {DIRECT}"
)
# The reader's side of the conversation: one fewer unread ($4: 1 or 0), the marker moves up.
_READ_MARKER = (
    "UPDATE direct_conversations SET unread_count = greatest(unread_count - $4, 0),"
    " last_read_message_id = greatest(coalesce(last_read_message_id, 0), $3)"
    " WHERE user_id = $1 AND other_id = $2"
)
_GROUP_MARKER = (
    "UPDATE group_members SET last_read_message_id = greatest(last_read_message_id,"
    " least($3, (SELECT coalesce(max(id), 0) FROM group_messages WHERE group_id = $1)))"
    " WHERE group_id = $1 AND user_id = $2 RETURNING last_read_message_id"
)
# What is left unread after the marker $3: a range of group_messages_group_idx.
_GROUP_UNREAD = (
    "UPDATE group_members SET unread_count = (SELECT count(*) FROM group_messages"
    " WHERE group_id = $1 AND id > $3 AND author_id <> $2 AND deleted_at IS NULL)"
    " WHERE group_id = $1 AND user_id = $2"
)

_TABLES: dict[MessageKind, str] = {"direct": "direct_messages", "group": "group_messages"}


def _direct_audience(author_id: int, recipient_id: int) -> tuple[int, ...]:
    return (author_id,) if author_id == recipient_id else (author_id, recipient_id)


def _event(
    kind: StreamKind,
    *,
    user_ids: tuple[int, ...] = (),
    group_id: int | None = None,
    message_id: int | None = None,
    actor_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> StreamEvent:
    """An event yet to be appended (``_append`` gives it its position and time)."""
    return StreamEvent(0, kind, user_ids, group_id, message_id, actor_id, data or {})


def _conversation_bound(
    before: ConversationKey | None, kind: MessageKind
) -> tuple[int, int] | None:
    """The greatest ``(position, peer_id)`` of a conversation of ``kind`` that sorts after
    ``before`` in the list (descending ``(position, kind, peer_id)``), inclusive; None if
    none can."""
    if before is None:
        return MAX_INT, MAX_INT
    position, peer = clamp(before.position), clamp(before.peer_id)
    if kind == before.kind:
        if peer > MIN_INT:
            return position, peer - 1
    elif kind < before.kind:  # "direct" < "group": at the same position, it sorts after
        return position, MAX_INT
    return (position - 1, MAX_INT) if position > MIN_INT else None


def _conversation_order(conversation: Conversation) -> tuple[int, str, int]:
    key = conversation.key
    return key.position, key.kind, key.peer_id


class StreamStorage(sql.SqlStorage):
    """The v2 methods of ``Storage`` (and the v1 ones that share their writes), on
    ``SqlStorage``'s plans."""

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC)

    def _moment(self, now: datetime) -> tuple[Any, datetime]:
        """``now`` as stored, and as it reads back."""
        stored = self._stored_time(now)
        return stored, self._stamp(stored)

    def _append(self, events: list[StreamEvent], now: datetime) -> Plan[list[StreamEvent]]:
        """Append ``events`` (in this order) to the stream, in the plan's transaction.

        The positions come from the UPDATE of ``stream_head``, taken after every other row
        lock of the transaction (the module docstring's order) and held until its commit:
        so a concurrent writer waits for our commit before it takes the next positions, and
        positions are in commit order. A rollback gives them back. The events are then
        written in position order."""
        if not events:
            return []
        rows = yield (HEAD, (len(events),))
        first = rows[0][0] - len(events) + 1
        stored, created_at = self._moment(now)
        placed = [
            attrs.evolve(event, position=first + i, created_at=created_at)
            for i, event in enumerate(events)
        ]
        for start in range(0, len(placed), _EVENTS_PER_INSERT):
            chunk = placed[start : start + _EVENTS_PER_INSERT]
            params: list[Any] = []
            for event in chunk:
                users = (*event.user_ids, None, None)
                params += (event.position, event.kind, users[0], users[1], event.group_id)
                params += (event.message_id, event.actor_id, json.dumps(event.data), stored)
            marks = ", ".join(
                "(" + ", ".join(f"${9 * i + n}" for n in range(1, 10)) + ")"
                for i in range(len(chunk))
            )
            yield (f"INSERT INTO stream_events ({EVENT_COLUMNS}) VALUES {marks}", tuple(params))
        return placed

    def _to_event(self, row: Sequence[Any]) -> StreamEvent:
        """A row of ``_EVENTS``."""
        position, kind, user_a, user_b, group_id, message_id, actor_id, data, created_at = row[
            :_EVENT_WIDTH
        ]
        users = tuple(u for u in dict.fromkeys((user_a, user_b)) if u is not None)
        direct_row = row[_EVENT_WIDTH : _EVENT_WIDTH + _DIRECT_WIDTH]
        group_row = row[_EVENT_WIDTH + _DIRECT_WIDTH :]
        direct = None if direct_row[0] is None else sql.to_direct(direct_row, self._stamp)
        group = None if group_row[0] is None else sql.to_group_message(group_row, self._stamp)
        return StreamEvent(
            position,
            kind,
            users,
            group_id,
            message_id,
            actor_id,
            json.loads(data),
            self._stamp(created_at),
            direct,
            group,
        )

    def _events_with_messages(self, rows: Sequence[Sequence[Any]]) -> Plan[list[StreamEvent]]:
        """The events of ``rows``, their messages with their reactions."""
        events = [self._to_event(row) for row in rows]
        directs = yield from self._reactions_of("direct", [e.direct for e in events if e.direct])
        groups = yield from self._reactions_of("group", [e.group for e in events if e.group])
        by_direct = {m.id: m for m in directs}
        by_group = {m.id: m for m in groups}
        return [
            attrs.evolve(
                e,
                direct=e.direct and by_direct[e.direct.id],
                group=e.group and by_group[e.group.id],
            )
            for e in events
        ]

    # -- v1 writes that keep the v2 counters -------------------------------------------

    def _mark_read(self, message_id: int) -> Plan[DirectMessage | None]:
        rows = yield (_READ, (message_id,))
        if rows:
            message = sql.to_direct(rows[0], self._stamp)
            if not message.state.deleted:  # a deleted one stopped counting already
                yield from self._read_marker(message, True)
        else:
            rows = yield (self._sql.direct_message, (message_id,))
            if not rows:
                return None
            message = sql.to_direct(rows[0], self._stamp)
        [message] = yield from self._reactions_of("direct", [message])
        return message

    def _read_marker(self, message: DirectMessage, was_unread: bool) -> Plan[None]:
        """The recipient's conversation after reading ``message``."""
        fewer = 1 if was_unread and message.author_id != message.recipient_id else 0
        yield (_READ_MARKER, (message.recipient_id, message.author_id, message.id, fewer))

    async def mark_read(self, message_id: int) -> DirectMessage | None:
        if not fits(message_id):
            return None
        return await self._plan(lambda: self._mark_read(message_id))

    def _advance_group_read(self, group_id: int, user_id: int, message_id: int) -> Plan[int | None]:
        rows = yield (_GROUP_MARKER, (group_id, user_id, message_id))
        if not rows:
            return None
        marker: int = rows[0][0]
        yield (_GROUP_UNREAD, (group_id, user_id, marker))
        return marker

    async def advance_group_read(self, group_id: int, user_id: int, message_id: int) -> int | None:
        if not fits(group_id, user_id):
            return None
        return await self._plan(
            lambda: self._advance_group_read(group_id, user_id, clamp(message_id))
        )

    async def mark_delivered(self, message_ids: Sequence[int]) -> None:
        if ids := possible_ids(message_ids):
            await self._rows(DELIVER, self._id_array(ids))

    # -- v2: rich messages -------------------------------------------------------------

    def _group_ok(self, kind: MessageKind, group_id: int | None) -> bool:
        return kind == "direct" or (group_id is not None and fits(group_id))

    async def edit_message(
        self, kind: MessageKind, message_id: int, group_id: int | None, editor_id: int, body: str
    ) -> StreamEvent | None:
        check_text(body=body)
        if not (fits(message_id, editor_id) and self._group_ok(kind, group_id)):
            return None
        now = self._now()
        return await self._plan(
            lambda: self._edit(kind, message_id, group_id, editor_id, body, now)
        )

    def _edit(
        self,
        kind: MessageKind,
        message_id: int,
        group_id: int | None,
        editor_id: int,
        body: str,
        now: datetime,
    ) -> Plan[StreamEvent | None]:
        stored, edited_at = self._moment(now)
        data = {"message": body, "edited_at": edited_at.isoformat()}
        if kind == "direct":
            rows = yield (
                "UPDATE direct_messages SET body = $2, edited_at = $3 WHERE id = $1"
                " AND author_id = $4 AND deleted_at IS NULL RETURNING author_id, recipient_id",
                (message_id, body, stored, editor_id),
            )
            if not rows:
                return None
            event = _event(
                "message_edited",
                user_ids=_direct_audience(rows[0][0], rows[0][1]),
                message_id=message_id,
                actor_id=editor_id,
                data=data,
            )
        else:
            rows = yield (
                "UPDATE group_messages SET body = $2, edited_at = $3 WHERE id = $1"
                " AND author_id = $4 AND group_id = $5 AND deleted_at IS NULL RETURNING id",
                (message_id, body, stored, editor_id, group_id),
            )
            if not rows:
                return None
            event = _event(
                "message_edited",
                group_id=group_id,
                message_id=message_id,
                actor_id=editor_id,
                data=data,
            )
        [event] = yield from self._append([event], now)
        return event

    async def delete_message(
        self, kind: MessageKind, message_id: int, group_id: int | None, deleter_id: int
    ) -> StreamEvent | None:
        if not (fits(message_id, deleter_id) and self._group_ok(kind, group_id)):
            return None
        now = self._now()
        return await self._plan(lambda: self._delete(kind, message_id, group_id, deleter_id, now))

    def _delete(
        self,
        kind: MessageKind,
        message_id: int,
        group_id: int | None,
        deleter_id: int,
        now: datetime,
    ) -> Plan[StreamEvent | None]:
        stored, _ = self._moment(now)
        if kind == "direct":
            rows = yield (
                "UPDATE direct_messages SET body = NULL, image_url = NULL, deleted_at = $3"
                " WHERE id = $1 AND author_id = $2 AND deleted_at IS NULL"
                " RETURNING author_id, recipient_id, status",
                (message_id, deleter_id, stored),
            )
            if not rows:
                return None
            author_id, recipient_id, status = rows[0]
            if status != "read" and author_id != recipient_id:
                yield (
                    "UPDATE direct_conversations SET unread_count = greatest(unread_count - 1, 0)"
                    " WHERE user_id = $1 AND other_id = $2",
                    (recipient_id, author_id),
                )
            event = _event(
                "message_deleted",
                user_ids=_direct_audience(author_id, recipient_id),
                message_id=message_id,
                actor_id=deleter_id,
            )
        else:
            rows = yield (
                "UPDATE group_messages SET body = NULL, image_url = NULL, deleted_at = $4"
                " WHERE id = $1 AND group_id = $2 AND deleted_at IS NULL AND (author_id = $3"
                " OR EXISTS (SELECT 1 FROM group_members WHERE group_id = $2 AND user_id = $3"
                " AND role = 'admin')) RETURNING author_id",
                (message_id, group_id, deleter_id, stored),
            )
            if not rows:
                return None
            # Those for whom it was unread (all but the author, up to their marker), locked
            # in key order before they change.
            unread_for = (
                " FROM group_members WHERE group_id = $1 AND last_read_message_id < $2"
                " AND user_id <> $3"
            )
            params = (group_id, message_id, rows[0][0])
            yield ("SELECT 1" + unread_for + " ORDER BY user_id FOR NO KEY UPDATE", params)
            yield (
                "UPDATE group_members SET unread_count = greatest(unread_count - 1, 0)"
                " WHERE (group_id, user_id) IN (SELECT group_id, user_id" + unread_for + ")",
                params,
            )
            event = _event(
                "message_deleted", group_id=group_id, message_id=message_id, actor_id=deleter_id
            )
        [event] = yield from self._append([event], now)
        return event

    async def react(
        self,
        kind: MessageKind,
        message_id: int,
        group_id: int | None,
        user_id: int,
        emoji: str,
        add: bool,
    ) -> StreamEvent | None:
        check_text(emoji=emoji)
        if not (fits(message_id, user_id) and self._group_ok(kind, group_id)):
            return None
        now = self._now()
        return await self._plan(
            lambda: self._react(kind, message_id, group_id, user_id, emoji, add, now)
        )

    def _react(
        self,
        kind: MessageKind,
        message_id: int,
        group_id: int | None,
        user_id: int,
        emoji: str,
        add: bool,
        now: datetime,
    ) -> Plan[StreamEvent | None]:
        if kind == "direct":
            rows = yield (
                "SELECT author_id, recipient_id FROM direct_messages WHERE id = $1"
                " AND deleted_at IS NULL AND (author_id = $2 OR recipient_id = $2)",
                (message_id, user_id),
            )
            if not rows:
                return None
            audience: dict[str, Any] = {"user_ids": _direct_audience(rows[0][0], rows[0][1])}
        else:
            rows = yield (
                "SELECT 1 FROM group_messages gm JOIN group_members m"
                " ON m.group_id = gm.group_id AND m.user_id = $3"
                " WHERE gm.id = $1 AND gm.group_id = $2 AND gm.deleted_at IS NULL",
                (message_id, group_id, user_id),
            )
            if not rows:
                return None
            audience = {"group_id": group_id}
        table = f"{kind}_reactions"
        if add:
            yield (
                f"INSERT INTO {table} (message_id, emoji, user_id) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING",
                (message_id, emoji, user_id),
            )
        else:
            yield (
                f"DELETE FROM {table} WHERE message_id = $1 AND emoji = $2 AND user_id = $3",
                (message_id, emoji, user_id),
            )
        event = _event(
            "reaction",
            message_id=message_id,
            actor_id=user_id,
            data={"emoji": emoji, "op": "add" if add else "remove"},
            **audience,
        )
        [event] = yield from self._append([event], now)
        return event

    async def read_direct(self, message_id: int, reader_id: int) -> StreamEvent | None:
        if not fits(message_id, reader_id):
            return None
        now = self._now()
        return await self._plan(lambda: self._read_direct(message_id, reader_id, now))

    def _read_direct(
        self, message_id: int, reader_id: int, now: datetime
    ) -> Plan[StreamEvent | None]:
        mine = " AND recipient_id = $2 AND deleted_at IS NULL"
        rows = yield (
            "UPDATE direct_messages SET status = 'read' WHERE id = $1 AND status <> 'read'"
            + mine
            + f" RETURNING {DIRECT}",
            (message_id, reader_id),
        )
        was_unread = bool(rows)
        if not rows:
            rows = yield (
                f"SELECT {DIRECT} FROM direct_messages WHERE id = $1" + mine,
                (message_id, reader_id),
            )
            if not rows:
                return None
        message = sql.to_direct(rows[0], self._stamp)
        yield from self._read_marker(message, was_unread)
        event = _event(
            "read_receipt",
            user_ids=(message.author_id,),
            message_id=message_id,
            actor_id=reader_id,
            data={"author_id": message.author_id},
        )
        [event] = yield from self._append([event], now)
        return event

    async def read_group(self, group_id: int, user_id: int, message_id: int) -> StreamEvent | None:
        if not fits(group_id, user_id):
            return None
        now = self._now()
        return await self._plan(lambda: self._read_group(group_id, user_id, clamp(message_id), now))

    def _read_group(
        self, group_id: int, user_id: int, message_id: int, now: datetime
    ) -> Plan[StreamEvent | None]:
        marker = yield from self._advance_group_read(group_id, user_id, message_id)
        if marker is None:
            return None
        event = _event(
            "group_read", group_id=group_id, actor_id=user_id, data={"message_id": marker}
        )
        [event] = yield from self._append([event], now)
        return event

    async def deliver_pending(self, message_ids: Sequence[int]) -> list[StreamEvent]:
        if not (ids := possible_ids(message_ids)):
            return []
        now = self._now()
        return await self._plan(lambda: self._deliver(ids, now))

    def _deliver(self, ids: list[int], now: datetime) -> Plan[list[StreamEvent]]:
        rows = yield (DELIVER, (self._id_array(ids),))
        events = [
            _event(
                "status", user_ids=(author_id,), message_id=message_id, data={"status": "delivered"}
            )
            for message_id, author_id in sorted((row[0], row[1]) for row in rows)
        ]
        return (yield from self._append(events, now))

    # -- v2: the stream ----------------------------------------------------------------

    async def stream_state(self) -> StreamState:
        [(epoch, head, swept_through)] = await self._rows(STREAM_STATE)
        return StreamState(epoch, head, swept_through)

    async def stream_for_user(
        self, user_id: int, after: int, upto: int | None, limit: int
    ) -> list[StreamEvent]:
        if not fits(user_id) or limit <= 0:
            return []
        bounds = (clamp(after), MAX_INT if upto is None else clamp(upto), clamp(limit))
        return await self._read_events(STREAM_FOR_USER, (user_id, *bounds))

    async def stream_after(self, after: int, limit: int) -> list[StreamEvent]:
        if limit <= 0:
            return []
        return await self._read_events(STREAM_AFTER, (clamp(after), clamp(limit)))

    async def _read_events(self, statement: str, params: tuple[Any, ...]) -> list[StreamEvent]:
        def plan() -> Plan[list[StreamEvent]]:
            rows = yield (statement, params)
            return (yield from self._events_with_messages(rows))

        return await self._plan(plan, writes=False)

    async def sweep_stream(self, older_than: datetime, limit: int) -> int:
        if limit <= 0:
            return 0
        stored = self._stored_time(older_than)

        def plan() -> Plan[int]:
            rows = yield (SWEEP, (stored, clamp(limit)))
            if rows:
                # stream_head last, as every writer (the module docstring).
                yield (SWEPT, (max(row[0] for row in rows),))
            return len(rows)

        return await self._plan(plan)

    # -- v2: conversations -------------------------------------------------------------

    async def conversations(
        self, user_id: int, before: ConversationKey | None, limit: int
    ) -> list[Conversation]:
        if not fits(user_id) or limit <= 0:
            return []
        return await self._plan(
            lambda: self._conversations(user_id, before, clamp(limit)), writes=False
        )

    def _conversations(
        self, user_id: int, before: ConversationKey | None, limit: int
    ) -> Plan[list[Conversation]]:
        stamp = self._stamp
        found: list[Conversation] = []
        if (bound := _conversation_bound(before, "direct")) is not None:
            rows = yield (CONVERSATIONS_DIRECT, (user_id, *bound, limit))
            messages = [None if row[5] is None else sql.to_direct(row[5:], stamp) for row in rows]
            reacted = yield from self._reactions_of("direct", [m for m in messages if m])
            by_id = {m.id: m for m in reacted}
            for row, message in zip(rows, messages, strict=True):
                position, other_id, username, unread, last_read = row[:5]
                last = message and by_id[message.id]
                found.append(
                    Conversation(
                        "direct",
                        other_id,
                        username,
                        last,
                        unread,
                        last_read,
                        last.created_at if last else datetime.fromtimestamp(0, UTC),
                        ConversationKey(position, "direct", other_id),
                    )
                )
        if (bound := _conversation_bound(before, "group")) is not None:
            rows = yield (CONVERSATIONS_GROUP, (user_id, *bound, limit))
            groups = [
                None if row[6] is None else sql.to_group_message(row[6:], stamp) for row in rows
            ]
            reacted_groups = yield from self._reactions_of("group", [m for m in groups if m])
            by_group_id = {m.id: m for m in reacted_groups}
            for row, group_message in zip(rows, groups, strict=True):
                position, group_id, name, unread, last_read, joined_at = row[:6]
                newest = group_message and by_group_id[group_message.id]
                found.append(
                    Conversation(
                        "group",
                        group_id,
                        name,
                        newest,
                        unread,
                        last_read or None,
                        newest.created_at if newest else stamp(joined_at),
                        ConversationKey(position, "group", group_id),
                    )
                )
        found.sort(key=_conversation_order, reverse=True)
        return found[:limit]
