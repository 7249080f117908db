"""PostgreSQL plans that must not depend on the statistics: statements that update rows
by id and check a state that a partial index is also about."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from hubbub.storage import open_storage
from hubbub.storage.message_changes import DELIVER
from hubbub.storage.pg_batch import DIRECT_BATCH
from hubbub.storage.webhook_outbox import _DELIVERED, _GIVE_UP, _RETRY, _UNDELIVERED
from tests.storage.test_postgres import raw_connection, two_users

pytestmark = pytest.mark.postgres

BACKLOG = 3000


async def test_statements_that_mark_by_id_never_scan_the_pending_index(
    postgres_url: str,
) -> None:
    """The planner picked the partial pending index for ``id = ANY($ids) AND status =
    'pending'`` when the table was analyzed while little was pending: every batch then
    read the whole backlog of offline users' messages, twice (33 + 15 ms a batch at
    60,000 pending, against 0.1 ms by primary key). Those statements find their rows by
    id alone; this sets up the tempting statistics and reads their generic plans."""
    async with open_storage(postgres_url) as storage, raw_connection(postgres_url) as run:
        await storage.migrate()
        alice, bob = await two_users(storage)
        insert = (
            "INSERT INTO direct_messages (author_id, recipient_id, body, status)"
            " SELECT $1, $2, 'm' || g, $3 FROM generate_series(1, $4) g"
        )
        await run(lambda c: c.execute(insert, alice.id, bob.id, "delivered", BACKLOG))
        await run(lambda c: c.execute("ANALYZE direct_messages"))
        await run(lambda c: c.execute(insert, alice.id, bob.id, "pending", BACKLOG))
        await run(lambda c: c.execute("SET plan_cache_mode = force_generic_plan"))
        ids = [1, 2, 3]
        statements: dict[str, tuple[str, tuple[Any, ...]]] = {
            "deliver": (DELIVER, (ids,)),
            "undelivered": (_UNDELIVERED, (ids, datetime.now(UTC))),
            "direct batch": (
                DIRECT_BATCH.sql,
                ([alice.id], [bob.id], ["hi"], [None], [None], [None], ids),
            ),
        }
        plans = await generic_plans(run, statements)
        scanning = [name for name, plan in plans.items() if "direct_messages_pending_idx" in plan]
        assert scanning == [], plans


async def test_outbox_updates_by_seq_never_scan_the_due_index(postgres_url: str) -> None:
    """The due index is ``(next_attempt_at, seq) WHERE state = 'pending'``: for ``seq = $1
    AND state = 'pending'`` the planner took it, a scan of the whole backlog (a receiver
    down for an hour) for every attempt's update, when analyzed while little was due."""
    async with open_storage(postgres_url) as storage, raw_connection(postgres_url) as run:
        await storage.migrate()
        insert = (
            "INSERT INTO webhook_outbox (event_id, type, state, finished_at)"
            " SELECT $1 || g, 'user.online', $2, CASE WHEN $2 = 'pending' THEN NULL"
            " ELSE now() END FROM generate_series(1, $3) g"
        )
        await run(lambda c: c.execute(insert, "done-", "delivered", BACKLOG))
        await run(lambda c: c.execute("ANALYZE webhook_outbox"))
        await run(lambda c: c.execute(insert, "due-", "pending", BACKLOG))
        await run(lambda c: c.execute("SET plan_cache_mode = force_generic_plan"))
        now = datetime.now(UTC)
        statements: dict[str, tuple[str, tuple[Any, ...]]] = {
            "delivered": (_DELIVERED, (5, now)),
            "retry": (_RETRY, (5, "503", now)),
            "give up": (_GIVE_UP, (5, "503", now)),
        }
        plans = await generic_plans(run, statements)
        scanning = [name for name, plan in plans.items() if "webhook_outbox_due_idx" in plan]
        assert scanning == [], plans


async def generic_plans(
    run: Callable[[Callable[[asyncpg.Connection], Awaitable[Any]]], Awaitable[Any]],
    statements: dict[str, tuple[str, tuple[Any, ...]]],
) -> dict[str, str]:
    """``EXPLAIN`` of each statement (not run), on a connection set to generic plans."""
    plans = {}
    for name, (statement, args) in statements.items():
        rows = await run(lambda c, s=statement, a=args: c.fetch("EXPLAIN " + s, *a))
        plans[name] = "\n".join(row[0] for row in rows)
    return plans
