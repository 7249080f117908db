"""``Webhooks`` for both backends, written once on ``SqlStorage``'s plans; and the group
membership writes with their outbox rows.

The sender's lease is a row with an expiry (``webhook_sender``), not an advisory lock: a
pooled connection may serve anyone next, and a row lapses by itself when its holder dies.
Times are the nodes' own: a clock far off lets a node take a lease early (then two send
for a while, which at-least-once allows), never loses an event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from hubbub.storage.outbox_writes import OutboxWrites, outbox_insert, undelivered_event_id
from hubbub.storage.records import MemberRole
from hubbub.storage.sql import Plan
from hubbub.storage.values import check_ids, clamp, fits
from hubbub.storage.webhook_store import OutboxEvent, Webhooks

_DUE = (
    "SELECT seq, event_id, type, created_at, message_kind, message_id, group_id, user_id,"
    " facts, attempts FROM webhook_outbox WHERE state = 'pending' AND next_attempt_at <= $1"
    " ORDER BY next_attempt_at, seq LIMIT $2"
)


def _if_pending(assignments: str) -> str:
    """An UPDATE of outbox row ``$1`` while it is pending. The row is found by ``seq`` alone
    and its state checked behind the CTE's fence: beside ``state = 'pending'`` the planner
    may take the due index (``seq`` is its second column) and read the whole backlog per
    update, as it did for the delivery marks (message_changes.py, DELIVER)."""
    return (
        "WITH asked AS MATERIALIZED (SELECT seq, state FROM webhook_outbox WHERE seq = $1"
        " FOR NO KEY UPDATE)"
        f" UPDATE webhook_outbox SET {assignments}"
        " WHERE seq = (SELECT seq FROM asked WHERE state = 'pending')"
    )


_DELIVERED = _if_pending(
    "state = 'delivered', attempts = attempts + 1, finished_at = $2, last_error = NULL"
)
_RETRY = _if_pending("attempts = attempts + 1, last_error = $2, next_attempt_at = $3")
_GIVE_UP = _if_pending(
    "state = 'failed', attempts = attempts + 1, last_error = $2, finished_at = $3"
)
_LEASE = (
    "UPDATE webhook_sender SET holder = $1, lease_until = $2 WHERE holder = $1"
    " OR holder IS NULL OR lease_until IS NULL OR lease_until < $3 RETURNING holder"
)
_RELEASE = "UPDATE webhook_sender SET holder = NULL, lease_until = NULL WHERE holder = $1"
_START_SCAN = (
    "UPDATE webhook_sender SET scanned_through = (SELECT position FROM stream_head)"
    " WHERE scanned_through IS NULL"
)
# Locks the row (PostgreSQL), so concurrent scans take turns; NULL: webhooks never started.
_SCAN_CURSOR = (
    "UPDATE webhook_sender SET scanned_through = scanned_through"
    " WHERE scanned_through IS NOT NULL RETURNING scanned_through"
)
_MESSAGE_EVENTS_AFTER = (
    "SELECT position, message_id, created_at FROM stream_events WHERE position > $1"
    " AND kind = 'message' ORDER BY position LIMIT $2"
)
# Of the direct messages $1, those still to report as undelivered at time $2.
# Found by id alone, filtered behind the fence (message_changes.py, DELIVER, says why).
_UNDELIVERED = (
    "WITH asked AS MATERIALIZED (SELECT id, status, deleted_at, author_id, recipient_id"
    " FROM direct_messages WHERE id = ANY($1::bigint[]))"
    " SELECT d.id FROM asked d WHERE"
    " d.status = 'pending' AND d.deleted_at IS NULL AND d.author_id <> d.recipient_id"
    " AND NOT EXISTS (SELECT 1 FROM conversation_mutes m WHERE m.user_id = d.recipient_id"
    " AND m.kind = 'direct' AND m.conversation_id = d.author_id"
    " AND (m.muted_until IS NULL OR m.muted_until > $2)) ORDER BY d.id"
)
_BACKLOG = "SELECT count(*) FROM webhook_outbox WHERE state = 'pending'"
_SWEEP = (
    "DELETE FROM webhook_outbox WHERE seq IN (SELECT seq FROM webhook_outbox"
    " WHERE state <> 'pending' AND finished_at < $1 ORDER BY finished_at LIMIT $2)"
    " RETURNING 1"
)


class WebhookOutbox(OutboxWrites, Webhooks):
    """The outbox on ``SqlStorage``; and ``add_member`` / ``remove_member`` with their
    ``group.member_*`` rows while webhooks are on (the creator's, of ``create_group``, is
    in each backend's own statement)."""

    async def enable_webhooks(self) -> None:
        await self._rows(_START_SCAN)
        self.webhooks = True

    # -- membership and presence, with their events ------------------------------------

    async def add_member(self, group_id: int, user_id: int, role: MemberRole = "member") -> None:
        if not self.webhooks:
            return await super().add_member(group_id, user_id, role)
        check_ids(group_id=group_id, user_id=user_id)
        now = self._now()
        await self._plan(lambda: self._add_member(group_id, user_id, role, now))

    def _add_member(
        self, group_id: int, user_id: int, role: MemberRole, now: datetime
    ) -> Plan[None]:
        yield (self._sql.add_member, (group_id, user_id, role, *self._time_params()))
        yield from self._hook("group.member_added", now, group_id=group_id, user_id=user_id)

    async def remove_member(self, group_id: int, user_id: int) -> bool:
        if not self.webhooks:
            return await super().remove_member(group_id, user_id)
        if not fits(group_id, user_id):
            return False
        now = self._now()
        return await self._plan(lambda: self._remove_member(group_id, user_id, now))

    def _remove_member(self, group_id: int, user_id: int, now: datetime) -> Plan[bool]:
        rows = yield (self._sql.remove_member, (group_id, user_id))
        if rows:
            yield from self._hook("group.member_removed", now, group_id=group_id, user_id=user_id)
        return bool(rows)

    async def user_online(self, user_id: int, when: datetime) -> None:
        if self.webhooks and fits(user_id):
            await self._plan(lambda: self._hook("user.online", when, user_id=user_id))

    async def user_offline(self, user_id: int, when: datetime) -> None:
        if not (self.webhooks and fits(user_id)):
            return await self.set_last_seen(user_id, when)
        await self._plan(lambda: self._offline(user_id, when))

    def _offline(self, user_id: int, when: datetime) -> Plan[None]:
        yield (self._sql.set_last_seen, (user_id, self._stored_time(when)))
        yield from self._hook("user.offline", when, user_id=user_id)

    # -- the sender --------------------------------------------------------------------

    async def take_webhook_lease(self, holder: str, now: datetime, ttl: float) -> bool:
        until = self._stored_time(now + timedelta(seconds=ttl))
        return bool(await self._rows(_LEASE, holder, until, self._stored_time(now)))

    async def release_webhook_lease(self, holder: str) -> None:
        await self._rows(_RELEASE, holder)

    async def due_webhooks(self, now: datetime, limit: int) -> list[OutboxEvent]:
        rows = await self._rows(_DUE, self._stored_time(now), clamp(max(limit, 0)))
        return [self._to_outbox_event(row) for row in rows]

    def _to_outbox_event(self, row: Sequence[Any]) -> OutboxEvent:
        seq, event_id, type, created_at, kind, message_id, group_id, user_id, facts, tries = row
        return OutboxEvent(
            seq,
            event_id,
            type,
            self._stamp(created_at),
            kind,
            message_id,
            group_id,
            user_id,
            json.loads(facts),
            tries,
        )

    async def webhook_delivered(self, seq: int, now: datetime) -> None:
        await self._rows(_DELIVERED, seq, self._stored_time(now))

    async def webhook_failed(
        self, seq: int, error: str, retry_at: datetime | None, now: datetime
    ) -> None:
        # The error text is ours (an HTTP status or an exception's name), bounded anyway.
        error = error[:500].replace("\x00", "")
        if retry_at is None:
            await self._rows(_GIVE_UP, seq, error, self._stored_time(now))
        else:
            await self._rows(_RETRY, seq, error, self._stored_time(retry_at))

    async def scan_undelivered(
        self, pending_before: datetime, not_before: datetime, limit: int, now: datetime
    ) -> tuple[int, int]:
        return await self._plan(
            lambda: self._scan(pending_before, not_before, clamp(max(limit, 1)), now)
        )

    def _scan(
        self, pending_before: datetime, not_before: datetime, limit: int, now: datetime
    ) -> Plan[tuple[int, int]]:
        rows = yield (_SCAN_CURSOR, ())
        if not rows:
            return 0, 0
        through = rows[0][0]
        events = yield (_MESSAGE_EVENTS_AFTER, (through, limit))
        # Positions are in commit order, times nearly so: the scan stops at the first
        # message too young, and the rest waits for the next scan.
        ready: list[tuple[int, int, datetime]] = []
        for position, message_id, created_at in events:
            created = self._stamp(created_at)
            if created > pending_before:
                break
            ready.append((position, message_id, created))
        if not ready:
            return 0, 0
        ids = [message_id for _, message_id, created in ready if created >= not_before]
        found: Sequence[Sequence[Any]] = []
        if ids:
            stored_now = self._stored_time(now)
            found = yield (_UNDELIVERED, (self._id_array(ids), stored_now))
        if found:
            [(epoch,)] = yield ("SELECT epoch FROM stream_head", ())
            params: list[Any] = []
            for (message_id,) in found:
                params += self._outbox_row(
                    "message.undelivered",
                    stored_now,
                    event_id=undelivered_event_id(epoch, message_id),
                    message_kind="direct",
                    message_id=message_id,
                )
            yield (outbox_insert(len(found), once=True), tuple(params))
        yield ("UPDATE webhook_sender SET scanned_through = $1", (ready[-1][0],))
        return len(ready), len(found)

    async def webhook_backlog(self) -> int:
        rows = await self._rows(_BACKLOG)
        return int(rows[0][0])

    async def sweep_webhooks(self, finished_before: datetime, limit: int) -> int:
        rows = await self._rows(_SWEEP, self._stored_time(finished_before), clamp(max(limit, 0)))
        return len(rows)
