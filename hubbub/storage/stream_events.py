"""The stream's rows, written once for both backends: appending events in commit order,
and reading event rows back with the messages they name.

Positions, and the lock order. Every transaction that appends stream events takes its
positions from the one row of ``stream_head`` (``StreamEvents._append``), and takes that row
lock after every other row lock it needs, so that it holds it until its commit: a second
writer (any node) waits on that row until the first has committed, then continues from the
first's new head. So positions are handed out in commit order, and a reader that has seen
position p never later sees an event below p. The order in which every writer takes its
row locks, so that no two of them can wait on each other:

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
from hubbub.storage.records import MessageKind, StreamEvent, StreamKind
from hubbub.storage.sql import DIRECT, GROUP_MESSAGE, Message, Plan, prefixed

#: How many events one INSERT writes at most (9 parameters each).
_EVENTS_PER_INSERT = 500

#: Takes ``$1`` positions: the row lock every appending transaction takes last.
HEAD = "UPDATE stream_head SET position = position + $1 RETURNING position"
EVENT_COLUMNS = "position, kind, user_a, user_b, group_id, message_id, actor_id, data, created_at"

#: Events with the message of ``message``/``group_message`` events as it is now.
EVENTS_WITH_MESSAGES = (
    f"SELECT {prefixed(EVENT_COLUMNS, 'e')}, {prefixed(DIRECT, 'd')},"
    f" {prefixed(GROUP_MESSAGE, 'g')} FROM stream_events e"
    " LEFT JOIN direct_messages d ON e.kind = 'message' AND d.id = e.message_id"
    " LEFT JOIN group_messages g ON e.kind = 'group_message' AND g.id = e.message_id"
)
_EVENT_WIDTH = len(EVENT_COLUMNS.split(","))
_DIRECT_WIDTH = len(DIRECT.split(","))


def direct_audience(author_id: int, recipient_id: int) -> tuple[int, ...]:
    """The users a direct message's events go to: its two sides (one, if to oneself)."""
    return (author_id,) if author_id == recipient_id else (author_id, recipient_id)


def new_event(
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


class StreamEvents(sql.SqlStorage):
    """``SqlStorage`` with the stream: appending events, and event rows as records."""

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

    def _append_one(self, event: StreamEvent, now: datetime) -> Plan[StreamEvent]:
        """``_append`` of the one event a change commits with."""
        [placed] = yield from self._append([event], now)
        return placed

    def _each_with_reactions(
        self, kind: MessageKind, messages: list[Message | None]
    ) -> Plan[list[Message | None]]:
        """``messages`` (None where a row names none) with their reactions, in place."""
        reacted = yield from self._reactions_of(kind, [m for m in messages if m])
        by_id = {m.id: m for m in reacted}
        return [m and by_id[m.id] for m in messages]

    def _to_event(self, row: Sequence[Any]) -> StreamEvent:
        """A row of ``EVENTS_WITH_MESSAGES`` (its messages without their reactions)."""
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
        """The events of ``rows`` (of ``EVENTS_WITH_MESSAGES``), their messages with their
        reactions."""
        events = [self._to_event(row) for row in rows]
        directs = yield from self._each_with_reactions("direct", [e.direct for e in events])
        groups = yield from self._each_with_reactions("group", [e.group for e in events])
        return [
            attrs.evolve(e, direct=direct, group=group)
            for e, direct, group in zip(events, directs, groups, strict=True)
        ]
