"""What the webhook sender and the presence announcer ask of storage (migration 0005).

Both backends implement it (``webhook_outbox.py``). The outbox rows themselves are written
by the changes they report, in their transactions (``outbox_writes.py``).
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

import attrs

from hubbub.storage.outbox_writes import EventType
from hubbub.storage.records import MessageKind


@attrs.frozen
class OutboxEvent:
    """One pending outbox row: the event, what it is about, and how often it was tried."""

    seq: int
    event_id: str
    type: EventType
    created_at: datetime
    message_kind: MessageKind | None
    message_id: int | None
    group_id: int | None
    user_id: int | None
    #: Facts of the moment added to the data (``message.deleted``: ``deleted_by``).
    facts: dict[str, Any]
    attempts: int


class Webhooks(abc.ABC):
    """The webhook outbox. Every method raises only ``StorageError``s."""

    @abc.abstractmethod
    async def enable_webhooks(self) -> None:
        """From now on the writes of this storage enqueue their webhook events. The first
        time ever (in this database), the ``message.undelivered`` scan starts at the
        stream head: messages of before are never reported."""

    @abc.abstractmethod
    async def user_online(self, user_id: int, when: datetime) -> None:
        """Enqueue ``user.online`` (webhooks on; else nothing)."""

    @abc.abstractmethod
    async def user_offline(self, user_id: int, when: datetime) -> None:
        """``set_last_seen(user_id, when)`` and, in the same transaction, ``user.offline``
        (webhooks on)."""

    @abc.abstractmethod
    async def take_webhook_lease(self, holder: str, now: datetime, ttl: float) -> bool:
        """Take or renew the one sender lease for ``ttl`` seconds from ``now``; True if
        ``holder`` has it (it was free, lapsed, or ``holder``'s already)."""

    @abc.abstractmethod
    async def release_webhook_lease(self, holder: str) -> None:
        """Give the lease up, if ``holder`` has it, so another node takes over at once."""

    @abc.abstractmethod
    async def due_webhooks(self, now: datetime, limit: int) -> list[OutboxEvent]:
        """The pending events due by ``now``, the longest due first; at most ``limit``."""

    @abc.abstractmethod
    async def webhook_delivered(self, seq: int, now: datetime) -> None:
        """The event was answered with a 2xx: delivered, never sent again."""

    @abc.abstractmethod
    async def webhook_failed(
        self, seq: int, error: str, retry_at: datetime | None, now: datetime
    ) -> None:
        """An attempt failed with ``error``: due again at ``retry_at``, or, if None,
        given up (``failed``)."""

    @abc.abstractmethod
    async def scan_undelivered(
        self, pending_before: datetime, not_before: datetime, limit: int, now: datetime
    ) -> tuple[int, int]:
        """Enqueue ``message.undelivered`` for the direct messages committed after the
        last scan and before ``pending_before`` that are still pending, not deleted, not
        to oneself, and whose recipient has not muted the conversation (a mute with
        ``muted_until`` NULL or after ``now``); those created before ``not_before`` are
        passed over. At most ``limit`` messages are looked at. Each message gets the event
        at most once, however often and from however many nodes this runs (its id is
        derived from the message). Returns how many messages it looked at (``limit``:
        there may be more) and how many events it enqueued."""

    @abc.abstractmethod
    async def webhook_backlog(self) -> int:
        """How many events are pending (the outbox depth)."""

    @abc.abstractmethod
    async def sweep_webhooks(self, finished_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events delivered or given up before ``finished_before``;
        how many."""
