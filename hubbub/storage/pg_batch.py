"""Idempotent message batches for PostgreSQL in one round trip, with their stream events.

A batch travels as one array per column. One statement then, with data-modifying CTEs:

1. ``input``: unnests the arrays WITH ORDINALITY and draws each row's id from the table's
   sequence in input order (so ids grow in the order messages were sent);
2. ``fresh``: those whose ``(author_id, client_id)`` the statement's snapshot does not hold
   yet, ranked by id: the messages to create, and so the number of positions to take;
3. (direct messages) ``pairs``: takes a transaction advisory lock per conversation of the
   batch, in key order, so that two batches creating one conversation's rows take turns;
   ``delivered``: marks ``delivered_ids`` delivered, locking them in id order; then
   ``locks``: locks the existing conversation rows of the batch's pairs (group messages:
   the member rows of its groups), in key order;
4. ``head``: only then takes the positions, ``UPDATE stream_head SET position = position +
   n``: the row lock is held until the commit, so a concurrent writer (another node) waits
   for it and continues from our new head, and positions are handed out in commit order.
   It comes after every lock that another writer may hold while it waits for the head
   (``stream_events.py`` gives the order), so two writers cannot deadlock;
5. ``inserted``: inserts them at ``head + rank`` with ``ON CONFLICT (author_id, client_id)
   DO NOTHING``, and then from what was inserted (pre-aggregated per conversation or group,
   as ON CONFLICT DO UPDATE and UPDATE touch a row once per statement): the conversation
   rows (direct) or the group's newest message and its members' unread counts (group), and
   the ``message`` / ``group_message`` events in position order; and (the ``*_HOOKED``
   statements, while webhooks are on) a ``message.created`` webhook outbox row each;
6. answers one row per input, in input order: the inserted row (``created``), or the row
   that already held that ``(author_id, client_id)``, found by joining back to the table.

The join reads the snapshot taken before the insert, which is exactly the rows that existed
before. A duplicate *within* the batch would be invisible to that join, so ``BatchPlan``
removes them before sending and answers them from their first occurrence afterwards.

A concurrent transaction may commit one of our ``(author_id, client_id)`` after our snapshot
was taken: ON CONFLICT then skips a row ``fresh`` counted, and the positions would not add
up. The statement then calls ``hubbub_batch_raced()`` (migration 0003), which raises a
serialization failure: everything rolls back (positions included), and the caller runs the
statement again, whose new snapshot holds the winner.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar, cast

import attrs

M = TypeVar("M")
S = TypeVar("S")


@attrs.frozen
class BatchPlan(Generic[M]):
    """A batch with repeats of one ``(author_id, client_id)`` taken out.

    ``unique`` is sent; ``first[i]`` is the index in ``unique`` that answers input ``i``."""

    unique: list[M]
    first: list[int]

    @classmethod
    def of(cls, batch: Sequence[M]) -> BatchPlan[M]:
        unique: list[M] = []
        first: list[int] = []
        seen: dict[tuple[int, str], int] = {}
        for message in batch:
            client_id = message.client_id  # type: ignore[attr-defined]
            key = (message.author_id, client_id)  # type: ignore[attr-defined]
            if client_id is not None and key in seen:
                first.append(seen[key])
                continue
            seen[key] = len(unique)
            first.append(len(unique))
            unique.append(message)
        return cls(unique, first)

    def columns(self, fields: Sequence[str]) -> list[list[Any]]:
        """One list per field, for the statement's array parameters."""
        return [[getattr(m, field) for m in self.unique] for field in fields]

    def answers(self, stored: Sequence[S]) -> list[S]:
        """Answers for ``unique``, spread back over the inputs: a repeat gets its first
        occurrence's row with ``created=False``."""
        answers = []
        used = set()
        for index in self.first:
            answer = stored[index]
            if index in used:
                answer = attrs.evolve(cast(Any, answer), created=False)
            used.add(index)
            answers.append(answer)
        return answers


@attrs.frozen
class BatchStatement:
    """The SQL to store one kind of message; parameters are ``fields`` as arrays, then (for
    direct messages) the ids to mark delivered."""

    table: str
    fields: tuple[str, ...]
    sql: str


def _statement(
    table: str,
    inputs: dict[str, str],
    outputs: tuple[str, ...],
    *,
    direct: bool,
    hooked: bool = False,
) -> BatchStatement:
    fields = tuple(inputs)
    names = ", ".join(fields)
    arrays = ", ".join(f"${n}::{kind}[]" for n, kind in enumerate(inputs.values(), 1))
    picks = {c: f"CASE WHEN n.id IS NULL THEN o.{c} ELSE n.{c} END" for c in outputs}
    if direct:
        marked = f"${len(fields) + 1}::bigint[]"
        locks = (
            # One advisory lock per conversation the batch writes, in key order, before any
            # row lock: two batches that both create a conversation's rows take turns here.
            # (Row locks cannot order that: a row committed after this statement's snapshot
            # is not seen by the locks CTE, so the upsert below would lock it out of order.)
            " pairs AS MATERIALIZED (SELECT pg_advisory_xact_lock(low, high) FROM"
            " (SELECT DISTINCT (least(author_id, recipient_id) % 2147483648)::int AS low,"
            " (greatest(author_id, recipient_id) % 2147483648)::int AS high FROM fresh) p"
            " ORDER BY low, high),"
            # Found by id alone, the pending ones kept behind a fence (message_changes.py,
            # DELIVER, says why); locked apart and handed over as one array: as ``id IN
            # (subquery)`` the planner may run the locking subquery again for every pending
            # row (quadratic).
            f" asked AS MATERIALIZED (SELECT id, status FROM {table} WHERE id = ANY({marked})"
            " AND (SELECT count(*) FROM pairs) >= 0 ORDER BY id FOR NO KEY UPDATE),"
            " marking AS MATERIALIZED (SELECT id FROM asked WHERE status = 'pending'),"
            f" delivered AS (UPDATE {table} SET status = 'delivered'"
            " WHERE id = ANY(ARRAY(SELECT id FROM marking)) RETURNING 1),"
            # The gate on delivered makes it run (and lock) before these locks. The gate on
            # pairs again: with no ids to mark, the planner skips ``asked`` whole, pairs
            # with it, and the advisory locks would not be taken at all.
            " locks AS MATERIALIZED (SELECT 1 FROM direct_conversations c"
            " WHERE (SELECT count(*) FROM delivered) >= 0 AND (SELECT count(*) FROM pairs) >= 0"
            " AND (c.user_id, c.other_id) IN"
            " (SELECT author_id, recipient_id FROM fresh"
            " UNION SELECT recipient_id, author_id FROM fresh)"
            " ORDER BY c.user_id, c.other_id FOR NO KEY UPDATE),"
        )
        after = (
            # Both users' rows (one for a message to oneself); unread for the recipient.
            " sides AS (SELECT author_id AS user_id, recipient_id AS other_id, position, id,"
            " 0 AS unread FROM inserted UNION ALL SELECT recipient_id, author_id, position, id,"
            " 1 FROM inserted WHERE recipient_id <> author_id),"
            " conversations AS (INSERT INTO direct_conversations AS c"
            " (user_id, other_id, last_position, last_message_id, unread_count)"
            " SELECT user_id, other_id, max(position), max(id), sum(unread) FROM sides"
            " GROUP BY user_id, other_id ORDER BY user_id, other_id"
            " ON CONFLICT (user_id, other_id) DO UPDATE SET"
            " last_position = greatest(c.last_position, excluded.last_position),"
            " last_message_id = greatest(c.last_message_id, excluded.last_message_id),"
            " unread_count = c.unread_count + excluded.unread_count),"
            " events AS (INSERT INTO stream_events"
            " (position, kind, user_a, user_b, message_id, actor_id, created_at)"
            " SELECT position, 'message', author_id, recipient_id, id, author_id, created_at"
            " FROM inserted ORDER BY position)"
        )
        # The join reads the pre-statement snapshot: show a duplicate the status the
        # delivered CTE gives it.
        picks["status"] = (
            "CASE WHEN n.id IS NOT NULL THEN n.status"
            f" WHEN o.status = 'pending' AND o.id = ANY({marked}) THEN 'delivered'"
            " ELSE o.status END"
        )
    else:
        locks = (
            " locks AS MATERIALIZED (SELECT 1 FROM group_members"
            " WHERE group_id IN (SELECT group_id FROM fresh)"
            " ORDER BY group_id, user_id FOR NO KEY UPDATE),"
        )
        after = (
            " per_group AS (SELECT group_id, max(position) AS position, max(id) AS id,"
            " count(*) AS n FROM inserted GROUP BY group_id),"
            " per_author AS (SELECT group_id, author_id, count(*) AS n FROM inserted"
            " GROUP BY group_id, author_id),"
            " newest AS (UPDATE groups g SET last_position = p.position,"
            " last_message_id = greatest(g.last_message_id, p.id)"
            " FROM per_group p WHERE g.id = p.group_id),"
            # One UPDATE per group: every member gains the batch's messages not their own.
            " unread AS (UPDATE group_members m SET unread_count = m.unread_count + p.n"
            " - coalesce((SELECT a.n FROM per_author a WHERE a.group_id = m.group_id"
            " AND a.author_id = m.user_id), 0) FROM per_group p WHERE m.group_id = p.group_id),"
            " events AS (INSERT INTO stream_events"
            " (position, kind, group_id, message_id, actor_id, created_at)"
            " SELECT position, 'group_message', group_id, id, author_id, created_at"
            " FROM inserted ORDER BY position)"
        )
    if hooked:
        # Webhooks are on: a message.created outbox row per new message (outbox_writes.py).
        kind, group = ("'direct'", "NULL") if direct else ("'group'", "group_id")
        after += (
            ", hooks AS (INSERT INTO webhook_outbox (event_id, type, message_kind,"
            " message_id, group_id, created_at, next_attempt_at)"
            f" SELECT gen_random_uuid()::text, 'message.created', {kind}, id, {group},"
            " created_at, created_at FROM inserted ORDER BY position)"
        )
    returning = ", ".join(outputs)
    count_fresh = "(SELECT count(*) FROM fresh)"
    sql = (
        # MATERIALIZED: evaluate nextval() exactly once per row, in ordinality order.
        f"WITH input AS MATERIALIZED (SELECT nextval('{table}_id_seq') AS id, t.*"
        f" FROM unnest({arrays}) WITH ORDINALITY AS t({names}, ord)),"
        " fresh AS MATERIALIZED (SELECT i.*, row_number() OVER (ORDER BY i.id) AS rank"
        " FROM input i WHERE i.client_id IS NULL OR NOT EXISTS (SELECT 1 FROM"
        f" {table} o WHERE o.author_id = i.author_id AND o.client_id = i.client_id)),"
        f"{locks}"
        # The positions, after every other lock (the gate on locks runs it first); none
        # taken, and no lock, when nothing is new.
        f" head AS (UPDATE stream_head SET position = position + {count_fresh}"
        f" WHERE (SELECT count(*) FROM locks) >= 0 AND {count_fresh} > 0"
        f" RETURNING position - {count_fresh} AS base),"
        f" inserted AS (INSERT INTO {table} (id, {names}, position)"
        f" SELECT f.id, {', '.join(f'f.{name}' for name in fields)}, h.base + f.rank"
        " FROM fresh f CROSS JOIN head h ORDER BY f.id"
        f" ON CONFLICT (author_id, client_id) DO NOTHING RETURNING {returning}),"
        f"{after}"
        " SELECT n.id IS NOT NULL AS created, "
        + ", ".join(f"{pick} AS {c}" for c, pick in picks.items())
        + f" FROM input i LEFT JOIN inserted n ON n.id = i.id LEFT JOIN {table} o"
        " ON n.id IS NULL AND o.author_id = i.author_id AND o.client_id = i.client_id"
        f" WHERE CASE WHEN (SELECT count(*) FROM inserted) = {count_fresh} THEN true"
        " ELSE hubbub_batch_raced() END"
        " ORDER BY i.ord"
    )
    return BatchStatement(table, fields, sql)


_STATE = ("position", "reply_to", "edited_at", "deleted_at")

_DIRECT_INPUTS = {
    "author_id": "bigint",
    "recipient_id": "bigint",
    "body": "text",
    "image_url": "text",
    "client_id": "text",
    "reply_to": "bigint",
}
_DIRECT_OUTPUTS = (
    "id",
    "author_id",
    "recipient_id",
    "body",
    "image_url",
    "client_id",
    "status",
    "created_at",
    *_STATE,
)
DIRECT_BATCH = _statement("direct_messages", _DIRECT_INPUTS, _DIRECT_OUTPUTS, direct=True)
#: With a message.created webhook outbox row per new message.
DIRECT_BATCH_HOOKED = _statement(
    "direct_messages", _DIRECT_INPUTS, _DIRECT_OUTPUTS, direct=True, hooked=True
)

_GROUP_INPUTS = {
    "author_id": "bigint",
    "group_id": "bigint",
    "body": "text",
    "image_url": "text",
    "client_id": "text",
    "reply_to": "bigint",
}
_GROUP_OUTPUTS = (
    "id",
    "group_id",
    "author_id",
    "body",
    "image_url",
    "client_id",
    "created_at",
    *_STATE,
)
GROUP_BATCH = _statement("group_messages", _GROUP_INPUTS, _GROUP_OUTPUTS, direct=False)
GROUP_BATCH_HOOKED = _statement(
    "group_messages", _GROUP_INPUTS, _GROUP_OUTPUTS, direct=False, hooked=True
)
