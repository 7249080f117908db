"""Reading the stream and the conversation list, and sweeping old events, written once for
both backends.

Reads run each statement on its own (no transaction): positions are handed out in commit
order (``stream_events.py``), so a reader that has seen position p never later finds a new
event below p, and a position is a cursor. The conversation list reads the counters the
writes keep (``message_changes.py`` and the message batches), never history. Sweeping
deletes the oldest events and moves ``swept_through`` up, taking the stream head last like
every writer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hubbub.storage import sql
from hubbub.storage.records import (
    Conversation,
    ConversationKey,
    MessageKind,
    StreamEvent,
    StreamState,
)
from hubbub.storage.sql import DIRECT, GROUP_MESSAGE, Plan, prefixed
from hubbub.storage.stream_events import EVENTS_WITH_MESSAGES, StreamEvents
from hubbub.storage.values import MAX_INT, MIN_INT, clamp, fits

STREAM_STATE = "SELECT epoch, position, swept_through FROM stream_head"

STREAM_AFTER = EVENTS_WITH_MESSAGES + " WHERE e.position > $1 ORDER BY e.position LIMIT $2"

# The user's events: three index ranges (as the author or recipient side of a direct event,
# as a member of a group since joining), each cut at the limit, then merged.
STREAM_FOR_USER = (
    EVENTS_WITH_MESSAGES + " WHERE e.position IN ("
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


class StreamReads(StreamEvents):
    """The methods of ``Storage`` that read the stream and the conversations, and sweep."""

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
                # stream_head last, as every writer (stream_events.py's lock order).
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
            directs = yield from self._each_with_reactions(
                "direct",
                [None if row[5] is None else sql.to_direct(row[5:], stamp) for row in rows],
            )
            for row, last in zip(rows, directs, strict=True):
                position, other_id, username, unread, last_read = row[:5]
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
            groups = yield from self._each_with_reactions(
                "group",
                [None if row[6] is None else sql.to_group_message(row[6:], stamp) for row in rows],
            )
            for row, newest in zip(rows, groups, strict=True):
                position, group_id, name, unread, last_read, joined_at = row[:6]
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
