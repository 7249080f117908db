"""What only the PostgreSQL backend has: its own event loop, races, timeouts, outages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
import trio
import trio_asyncio

from hubbub.storage import NewDirectMessage, Storage, StorageUnavailable, User, open_storage
from tests.helpers.polling import poll_until
from tests.helpers.servers import PostgresServer, ServerError

pytestmark = pytest.mark.postgres


async def two_users(storage: Storage) -> tuple[User, User]:
    alice = await storage.create_user("alice", "alice@example.org", "h")
    bob = await storage.create_user("bob", "bob@example.org", "h")
    return alice, bob


@asynccontextmanager
async def raw_connection(url: str) -> AsyncIterator[Callable[[Awaitable[Any]], Awaitable[Any]]]:
    """A plain asyncpg connection beside the storage; yields ``run(coroutine)``."""
    async with trio_asyncio.open_loop() as loop:
        conn = await loop.run_aio_coroutine(asyncpg.connect(url, timeout=10))
        try:
            yield lambda make: loop.run_aio_coroutine(make(conn))
        finally:
            with trio.CancelScope(shield=True):
                await loop.run_aio_coroutine(conn.close(timeout=10))


async def hold_uncommitted_duplicate(run, author: User, recipient: User) -> int:
    """Insert (author, "k") in a transaction left open; its id."""
    await run(lambda c: c.execute("BEGIN"))
    return await run(
        lambda c: c.fetchval(
            "INSERT INTO direct_messages (author_id, recipient_id, body, client_id)"
            " VALUES ($1, $2, 'first', 'k') RETURNING id",
            author.id,
            recipient.id,
        )
    )


async def test_errors_in_the_body_come_out_unwrapped(postgres_url: str) -> None:
    with pytest.raises(KeyError):
        async with open_storage(postgres_url):
            raise KeyError("mine")


async def test_cancelling_the_body_closes_cleanly(postgres_url: str) -> None:
    with trio.move_on_after(0.2) as scope:
        async with open_storage(postgres_url) as storage:
            await storage.ping()
            await trio.sleep_forever()
    assert scope.cancelled_caught


async def test_two_storages_serve_a_task_from_outside_their_context(postgres_url: str) -> None:
    jobs_in, jobs_out = trio.open_memory_channel[Callable[[], Awaitable[None]]](0)
    finished = trio.Event()

    async def worker() -> None:
        # Started before any storage opened: its context holds no trio-asyncio loop.
        async for job in jobs_out:
            await job()
            finished.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(worker)
        async with open_storage(postgres_url) as first, open_storage(postgres_url) as second:
            await first.migrate()

            async def job() -> None:
                alice, _ = await two_users(first)
                assert await second.user_by_id(alice.id) == alice

            await jobs_in.send(job)
            with trio.fail_after(10):
                await finished.wait()
        nursery.cancel_scope.cancel()


async def test_a_batch_racing_an_uncommitted_duplicate_answers_the_winner(
    postgres_url: str,
) -> None:
    async with open_storage(postgres_url) as storage, raw_connection(postgres_url) as run:
        await storage.migrate()
        alice, bob = await two_users(storage)
        first_id = await hold_uncommitted_duplicate(run, alice, bob)
        results = []

        async def store() -> None:
            batch = [NewDirectMessage(alice.id, bob.id, "second", None, "k")]
            batch.append(NewDirectMessage(alice.id, bob.id, "other", None, None))
            results.extend(await storage.store_direct_messages(batch))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(store)
            # Once our batch waits on the open transaction, its snapshot predates the row.
            await poll_until(
                lambda: run(
                    lambda c: c.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted")
                ),
                what="the batch waiting on the open transaction",
                timeout=10,
                interval=0.01,
            )
            await run(lambda c: c.execute("COMMIT"))
        assert not results[0].created
        assert (results[0].message.id, results[0].message.body) == (first_id, "first")
        assert results[1].created


async def test_a_call_past_the_timeout_is_unavailable_and_writes_nothing(
    postgres_url: str,
) -> None:
    async with (
        open_storage(postgres_url, timeout=1) as storage,
        raw_connection(postgres_url) as run,
    ):
        await storage.migrate()
        alice, bob = await two_users(storage)
        await hold_uncommitted_duplicate(run, alice, bob)
        batch = [NewDirectMessage(alice.id, bob.id, "blocked", None, "k")]
        batch.append(NewDirectMessage(alice.id, bob.id, "with it", None, None))
        with trio.fail_after(10), pytest.raises(StorageUnavailable, match=r"within 1 s"):
            await storage.store_direct_messages(batch)
        await run(lambda c: c.execute("ROLLBACK"))
        assert await storage.direct_history(alice.id, bob.id, None, 10) == []


@pytest.mark.usefixtures("postgres_server_url")  # skips (or fails under CI) like the others
async def test_a_server_outage_is_unavailable_and_the_pool_recovers() -> None:
    try:
        server = PostgresServer.create()
    except ServerError as exc:  # e.g. tests given an external server, and no binaries here
        pytest.skip(f"cannot start a PostgreSQL of this test's own: {exc}")
    try:
        await trio.to_thread.run_sync(server.start)
        async with open_storage(server.url, timeout=2) as storage:
            await storage.migrate()
            await trio.to_thread.run_sync(server.stop)
            with trio.fail_after(10), pytest.raises(StorageUnavailable):
                await storage.ping()
            await trio.to_thread.run_sync(server.start)
            await storage.ping()
            assert await storage.schema_version() >= 1
    finally:
        await trio.to_thread.run_sync(server.cleanup)
