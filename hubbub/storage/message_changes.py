"""Changes to messages after they are stored, written once for both backends: edit,
delete, react, read (direct and group) and delivery.

Each v2 change commits with its one stream event, in one transaction, and answers that
event; None means "not allowed" and nothing was written (``interface.py``). Each keeps the
counters the conversation list reads (unread counts, read markers) in the same
transaction, so they never need a scan of history. Row locks are taken in the order of
``stream_events.py``: the message row first, then conversation or member rows by key, the
stream head last. The v1 writes that change the same rows (``mark_read``,
``advance_group_read``, ``mark_delivered``) are here too, so that they keep those
counters alike.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs

from hubbub.storage import sql
from hubbub.storage.outbox_writes import OutboxWrites
from hubbub.storage.records import DirectMessage, MessageKind, StreamEvent
from hubbub.storage.sql import DIRECT, Plan
from hubbub.storage.stream_events import direct_audience, new_event
from hubbub.storage.values import check_text, clamp, fits, possible_ids

#: Marks delivered those of ``$1`` still pending, locking them in id order. The rows are
#: found by id alone and the pending ones kept behind the CTE's fence: with ``status =
#: 'pending'`` beside the ids, the planner may scan the whole pending index instead (its
#: statistics taken while few were pending), a read of every offline user's backlog per
#: call. The locked ids are handed over as one array: as ``id IN (subquery)`` the planner
#: may run the locking subquery again for every pending row (68 ms for 400 ids).
DELIVER = (
    "WITH asked AS MATERIALIZED (SELECT id, status FROM direct_messages"
    " WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE),"
    " marking AS MATERIALIZED (SELECT id FROM asked WHERE status = 'pending')"
    " UPDATE direct_messages SET status = 'delivered'"
    " WHERE id = ANY(ARRAY(SELECT id FROM marking)) RETURNING id, author_id"
)

# Marks the direct message $1 read, if it is not yet; the conditions follow.
_READ_WHERE = "UPDATE direct_messages SET status = 'read' WHERE id = $1 AND status <> 'read'"
_RETURNING_DIRECT = f" RETURNING {DIRECT}"
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

T = TypeVar("T")


@attrs.frozen
class NamedMessage:
    """A message as a change names it: its kind and id, and for a group message the group
    it must belong to (ignored for a direct one)."""

    kind: MessageKind
    id: int
    group_id: int | None


def named_message(
    kind: MessageKind, message_id: int, group_id: int | None, actor_id: int
) -> NamedMessage | None:
    """The message a change by ``actor_id`` names; None if an id is one no row can hold
    (the change then finds nothing, without asking the database)."""
    group_ok = kind == "direct" or (group_id is not None and fits(group_id))
    if not (group_ok and fits(message_id, actor_id)):
        return None
    return NamedMessage(kind, message_id, group_id)


class MessageChanges(OutboxWrites):
    """The methods of ``Storage`` that change stored messages and their read state."""

    async def _change(self, change: Callable[[datetime], Plan[T]]) -> T:
        """Run the plan ``change(now)`` in one transaction; ``now`` is taken once, so a
        retried transaction stores the same time."""
        now = self._now()
        return await self._plan(lambda: change(now))

    # -- v1 writes that keep the v2 counters -------------------------------------------

    def _mark_read(self, message_id: int) -> Plan[DirectMessage | None]:
        rows = yield (_READ_WHERE + _RETURNING_DIRECT, (message_id,))
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

    async def edit_message(
        self, kind: MessageKind, message_id: int, group_id: int | None, editor_id: int, body: str
    ) -> StreamEvent | None:
        check_text(body=body)
        if (message := named_message(kind, message_id, group_id, editor_id)) is None:
            return None
        return await self._change(functools.partial(self._edit, message, editor_id, body))

    def _edit(
        self, message: NamedMessage, editor_id: int, body: str, now: datetime
    ) -> Plan[StreamEvent | None]:
        stored, edited_at = self._moment(now)
        audience: dict[str, Any]
        if message.kind == "direct":
            rows = yield (
                "UPDATE direct_messages SET body = $2, edited_at = $3 WHERE id = $1"
                " AND author_id = $4 AND deleted_at IS NULL RETURNING author_id, recipient_id",
                (message.id, body, stored, editor_id),
            )
            if not rows:
                return None
            audience = {"user_ids": direct_audience(rows[0][0], rows[0][1])}
        else:
            rows = yield (
                "UPDATE group_messages SET body = $2, edited_at = $3 WHERE id = $1"
                " AND author_id = $4 AND group_id = $5 AND deleted_at IS NULL RETURNING id",
                (message.id, body, stored, editor_id, message.group_id),
            )
            if not rows:
                return None
            audience = {"group_id": message.group_id}
        event = new_event(
            "message_edited",
            message_id=message.id,
            actor_id=editor_id,
            data={"message": body, "edited_at": edited_at.isoformat()},
            **audience,
        )
        yield from self._hook_message(
            "message.edited", message.kind, message.id, message.group_id, now
        )
        return (yield from self._append_one(event, now))

    async def delete_message(
        self, kind: MessageKind, message_id: int, group_id: int | None, deleter_id: int
    ) -> StreamEvent | None:
        if (message := named_message(kind, message_id, group_id, deleter_id)) is None:
            return None
        return await self._change(functools.partial(self._delete, message, deleter_id))

    def _delete(
        self, message: NamedMessage, deleter_id: int, now: datetime
    ) -> Plan[StreamEvent | None]:
        stored, _ = self._moment(now)
        audience: dict[str, Any]
        if message.kind == "direct":
            rows = yield (
                "UPDATE direct_messages SET body = NULL, image_url = NULL, deleted_at = $3"
                " WHERE id = $1 AND author_id = $2 AND deleted_at IS NULL"
                " RETURNING author_id, recipient_id, status, position",
                (message.id, deleter_id, stored),
            )
            if not rows:
                return None
            author_id, recipient_id, status, position = rows[0]
            yield from self._forget_edits("user_a", author_id, position, message, " IS NULL")
            if status != "read" and author_id != recipient_id:
                yield (
                    "UPDATE direct_conversations SET unread_count = greatest(unread_count - 1, 0)"
                    " WHERE user_id = $1 AND other_id = $2",
                    (recipient_id, author_id),
                )
            audience = {"user_ids": direct_audience(author_id, recipient_id)}
        else:
            rows = yield (
                "UPDATE group_messages SET body = NULL, image_url = NULL, deleted_at = $4"
                " WHERE id = $1 AND group_id = $2 AND deleted_at IS NULL AND (author_id = $3"
                " OR EXISTS (SELECT 1 FROM group_members WHERE group_id = $2 AND user_id = $3"
                " AND role = 'admin')) RETURNING author_id, position",
                (message.id, message.group_id, deleter_id, stored),
            )
            if not rows:
                return None
            group_id, position = message.group_id, rows[0][1]
            yield from self._forget_edits("group_id", group_id, position, message, " IS NOT NULL")
            # Those for whom it was unread (all but the author, up to their marker), locked
            # in key order before they change.
            unread_for = (
                " FROM group_members WHERE group_id = $1 AND last_read_message_id < $2"
                " AND user_id <> $3"
            )
            params = (message.group_id, message.id, rows[0][0])
            yield ("SELECT 1" + unread_for + " ORDER BY user_id FOR NO KEY UPDATE", params)
            yield (
                "UPDATE group_members SET unread_count = greatest(unread_count - 1, 0)"
                " WHERE (group_id, user_id) IN (SELECT group_id, user_id" + unread_for + ")",
                params,
            )
            audience = {"group_id": message.group_id}
        event = new_event("message_deleted", message_id=message.id, actor_id=deleter_id, **audience)
        yield from self._hook_message(
            "message.deleted",
            message.kind,
            message.id,
            message.group_id,
            now,
            facts={"deleted_by": deleter_id},
        )
        return (yield from self._append_one(event, now))

    def _forget_edits(
        self, column: str, value: int | None, after: int, message: NamedMessage, group: str
    ) -> Plan[None]:
        """Take the text out of the message's earlier edit events: a deleted message's
        words must not come back in a replay (nor stay in storage until the sweep).
        ``column``/``value``: the index that finds them (the author's for a direct
        message, the group's), from the message's position on."""
        rows = yield (
            f"SELECT position, data FROM stream_events WHERE {column} = $1 AND position > $2"
            f" AND kind = 'message_edited' AND message_id = $3 AND group_id{group}",
            (value, after, message.id),
        )
        for position, data in rows:
            kept = {"edited_at": json.loads(data).get("edited_at", "")}
            yield (
                "UPDATE stream_events SET data = $2 WHERE position = $1",
                (position, json.dumps(kept)),
            )
        return None

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
        if (message := named_message(kind, message_id, group_id, user_id)) is None:
            return None
        return await self._change(functools.partial(self._react, message, user_id, emoji, add))

    def _react(
        self, message: NamedMessage, user_id: int, emoji: str, add: bool, now: datetime
    ) -> Plan[StreamEvent | None]:
        audience: dict[str, Any]
        if message.kind == "direct":
            rows = yield (
                "SELECT author_id, recipient_id FROM direct_messages WHERE id = $1"
                " AND deleted_at IS NULL AND (author_id = $2 OR recipient_id = $2)",
                (message.id, user_id),
            )
            if not rows:
                return None
            audience = {"user_ids": direct_audience(rows[0][0], rows[0][1])}
        else:
            rows = yield (
                "SELECT 1 FROM group_messages gm JOIN group_members m"
                " ON m.group_id = gm.group_id AND m.user_id = $3"
                " WHERE gm.id = $1 AND gm.group_id = $2 AND gm.deleted_at IS NULL",
                (message.id, message.group_id, user_id),
            )
            if not rows:
                return None
            audience = {"group_id": message.group_id}
        table = f"{message.kind}_reactions"
        if add:
            yield (
                f"INSERT INTO {table} (message_id, emoji, user_id) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING",
                (message.id, emoji, user_id),
            )
        else:
            yield (
                f"DELETE FROM {table} WHERE message_id = $1 AND emoji = $2 AND user_id = $3",
                (message.id, emoji, user_id),
            )
        event = new_event(
            "reaction",
            message_id=message.id,
            actor_id=user_id,
            data={"emoji": emoji, "op": "add" if add else "remove"},
            **audience,
        )
        return (yield from self._append_one(event, now))

    async def read_direct(self, message_id: int, reader_id: int) -> StreamEvent | None:
        if not fits(message_id, reader_id):
            return None
        return await self._change(functools.partial(self._read_direct, message_id, reader_id))

    def _read_direct(
        self, message_id: int, reader_id: int, now: datetime
    ) -> Plan[StreamEvent | None]:
        mine = " AND recipient_id = $2 AND deleted_at IS NULL"
        rows = yield (_READ_WHERE + mine + _RETURNING_DIRECT, (message_id, reader_id))
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
        event = new_event(
            "read_receipt",
            user_ids=(message.author_id,),
            message_id=message_id,
            actor_id=reader_id,
            data={"author_id": message.author_id},
        )
        return (yield from self._append_one(event, now))

    async def read_group(self, group_id: int, user_id: int, message_id: int) -> StreamEvent | None:
        if not fits(group_id, user_id):
            return None
        return await self._change(
            functools.partial(self._read_group, group_id, user_id, clamp(message_id))
        )

    def _read_group(
        self, group_id: int, user_id: int, message_id: int, now: datetime
    ) -> Plan[StreamEvent | None]:
        marker = yield from self._advance_group_read(group_id, user_id, message_id)
        if marker is None:
            return None
        event = new_event(
            "group_read", group_id=group_id, actor_id=user_id, data={"message_id": marker}
        )
        return (yield from self._append_one(event, now))

    async def deliver_pending(self, message_ids: Sequence[int]) -> list[StreamEvent]:
        if not (ids := possible_ids(message_ids)):
            return []
        return await self._change(functools.partial(self._deliver, ids))

    def _deliver(self, ids: list[int], now: datetime) -> Plan[list[StreamEvent]]:
        rows = yield (DELIVER, (self._id_array(ids),))
        events = [
            new_event(
                "status", user_ids=(author_id,), message_id=message_id, data={"status": "delivered"}
            )
            for message_id, author_id in sorted((row[0], row[1]) for row in rows)
        ]
        return (yield from self._append(events, now))
