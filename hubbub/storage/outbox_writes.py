"""Webhook outbox rows, written in the transaction of what they report (migration 0005).

Only while webhooks are on (``OutboxWrites.webhooks``, set by ``enable_webhooks``): without
them no write pays for a row. Each row names what the event is about (a message by kind
and id, or a user and a group); its data is rendered when it is sent. Where a change also
takes the stream head, its outbox row is written before it, so that the head's row lock
(held to the commit) is not held for one more statement (``stream_events.py``). An outbox
row is a new row with a random unique id: it waits on no other writer's lock.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from hubbub.storage.records import MessageKind
from hubbub.storage.sql import Plan
from hubbub.storage.stream_events import StreamEvents

EventType = Literal[
    "message.created",
    "message.edited",
    "message.deleted",
    "message.undelivered",
    "user.online",
    "user.offline",
    "group.member_added",
    "group.member_removed",
]

OUTBOX_COLUMNS = (
    "event_id, type, message_kind, message_id, group_id, user_id, facts, created_at,"
    " next_attempt_at"
)
_WIDTH = len(OUTBOX_COLUMNS.split(","))


def outbox_insert(rows: int, *, once: bool = False) -> str:
    """An INSERT of ``rows`` outbox rows (``_WIDTH`` parameters each, in ``OUTBOX_COLUMNS``
    order; ``next_attempt_at`` is ``created_at``: due at once). With ``once``, a row whose
    ``event_id`` exists is skipped."""
    marks = ", ".join(
        "(" + ", ".join(f"${_WIDTH * i + n}" for n in range(1, _WIDTH + 1)) + ")"
        for i in range(rows)
    )
    skip = " ON CONFLICT (event_id) DO NOTHING" if once else ""
    return f"INSERT INTO webhook_outbox ({OUTBOX_COLUMNS}) VALUES {marks}{skip}"


def new_event_id() -> str:
    """A random event id (UUID 4, 36 characters)."""
    return str(uuid.uuid4())


def undelivered_event_id(epoch: str, message_id: int) -> str:
    """The one id ``message.undelivered`` of ``message_id`` ever gets in this database
    (whose stream ``epoch`` names it): a UUID 5, so a repeated scan enqueues nothing."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"hubbub:{epoch}:message.undelivered:{message_id}"))


class OutboxWrites(StreamEvents):
    """``StreamEvents`` with the outbox row a change commits with, while webhooks are on."""

    #: Whether writes enqueue webhook events; off until ``enable_webhooks``.
    webhooks: bool = False

    def _outbox_row(
        self,
        type: EventType,
        stored_now: Any,
        *,
        event_id: str | None = None,
        message_kind: MessageKind | None = None,
        message_id: int | None = None,
        group_id: int | None = None,
        user_id: int | None = None,
        facts: dict[str, Any] | None = None,
    ) -> tuple[Any, ...]:
        """One row's parameters for ``outbox_insert``."""
        return (
            event_id or new_event_id(),
            type,
            message_kind,
            message_id,
            group_id,
            user_id,
            json.dumps(facts or {}),
            stored_now,
            stored_now,
        )

    def _hook(self, type: EventType, now: datetime, **about: Any) -> Plan[None]:
        """Enqueue one event in the plan's transaction, if webhooks are on (``about``: the
        keywords of ``_outbox_row``)."""
        if self.webhooks:
            row = self._outbox_row(type, self._stored_time(now), **about)
            yield (outbox_insert(1), row)

    def _hook_message(
        self,
        type: EventType,
        kind: MessageKind,
        message_id: int,
        group_id: int | None,
        now: datetime,
        facts: dict[str, Any] | None = None,
    ) -> Plan[None]:
        """``_hook`` of an event about a message."""
        yield from self._hook(
            type,
            now,
            message_kind=kind,
            message_id=message_id,
            group_id=group_id if kind == "group" else None,
            facts=facts,
        )

    def _created_hook(self, kind: MessageKind, message: Any, stored_now: Any) -> tuple[Any, ...]:
        """The ``message.created`` row of a message a batch stored (SQLite's batch; the
        PostgreSQL one writes it in its statement)."""
        group_id = message.group_id if kind == "group" else None
        return self._outbox_row(
            "message.created",
            stored_now,
            message_kind=kind,
            message_id=message.id,
            group_id=group_id,
        )
