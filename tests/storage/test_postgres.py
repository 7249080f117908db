"""What only the PostgreSQL backend has: its own event loop, races, timeouts, outages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import trio

from hubbub.storage import (
    NewDirectMessage,
    NewGroupMessage,
    Storage,
    StorageUnavailable,
    User,
    open_storage,
)
from hubbub.storage.asyncio_thread import open_asyncio_thread
from hubbub.storage.postgres import PostgresStorage
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
    async with open_asyncio_thread("test-raw-connection") as loop:
        conn = await loop.run(asyncpg.connect(url, timeout=10))
        try:
            yield lambda make: loop.run(make(conn))
        finally:
            with trio.CancelScope(shield=True):
                await loop.run(conn.close(timeout=10))


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
        # Started before any storage opened, so outside their contexts.
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


@asynccontextmanager
async def a_write_held_up(url: str) -> AsyncIterator[tuple[PostgresStorage, User, User]]:
    """A storage whose calls time out after 1 s, and alice's ``client_id`` "k" taken by a
    transaction left open beside it, so that a write of it waits; on the way out that
    transaction is rolled back and nothing of alice's to bob may have been written."""
    async with open_storage(url, timeout=1) as storage, raw_connection(url) as run:
        assert isinstance(storage, PostgresStorage)
        await storage.migrate()
        alice, bob = await two_users(storage)
        await hold_uncommitted_duplicate(run, alice, bob)
        yield storage, alice, bob
        await run(lambda c: c.execute("ROLLBACK"))
        assert await storage.direct_history(alice.id, bob.id, None, 10) == []


def insert_late(conn: asyncpg.Connection, author: User, recipient: User, **options: Any) -> Any:
    """Insert (author, "k"): waits for the held transaction."""
    return conn.execute(
        "INSERT INTO direct_messages (author_id, recipient_id, body, client_id)"
        " VALUES ($1, $2, 'late', 'k')",
        author.id,
        recipient.id,
        **options,
    )


async def test_a_call_past_the_timeout_is_unavailable_and_writes_nothing(
    postgres_url: str,
) -> None:
    async with a_write_held_up(postgres_url) as (storage, alice, bob):
        batch = [NewDirectMessage(alice.id, bob.id, "blocked", None, "k")]
        batch.append(NewDirectMessage(alice.id, bob.id, "with it", None, None))
        with trio.fail_after(10), pytest.raises(StorageUnavailable, match=r"within 1 s"):
            await storage.store_direct_messages(batch)


async def test_a_statement_past_asyncpgs_own_timeout_writes_nothing(postgres_url: str) -> None:
    """asyncpg's command timeout (the storage's, 1 s) fires before the call's deadline
    (3 s): the connection must wait for the server to cancel the statement, not be
    dropped with the statement still waiting on the lock (it would commit once the lock
    is released)."""
    async with a_write_held_up(postgres_url) as (storage, alice, bob):
        with trio.fail_after(10), pytest.raises(StorageUnavailable):
            await storage._call(lambda conn: insert_late(conn, alice, bob), timeout=3)


async def test_a_deadline_landing_while_the_statement_is_being_cancelled_writes_nothing(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncpg's command timeout fires, then the call's own deadline cancels the task while
    the pool waits for the server to cancel the statement (the two are the same length, so
    either may come first). The call must still wait for the cancel to land: going on
    while the request is in flight let the write commit once its lock was released."""
    send_cancel = asyncpg.connect_utils._cancel

    async def slow_cancel(**kwargs: Any) -> None:
        await asyncio.sleep(0.5)  # a loaded machine: the request is slow to reach the server
        await send_cancel(**kwargs)

    monkeypatch.setattr(asyncpg.connect_utils, "_cancel", slow_cancel)

    async def insert_then_cancelled(conn: asyncpg.Connection, alice: User, bob: User) -> None:
        try:
            await insert_late(conn, alice, bob, timeout=0.2)
        except TimeoutError:
            # The deadline, at the next await: the release waiting for the cancel.
            current = asyncio.current_task()
            assert current is not None
            current.cancel()
            raise

    async with a_write_held_up(postgres_url) as (storage, alice, bob):
        with trio.fail_after(10), pytest.raises(StorageUnavailable):
            await storage._call(lambda conn: insert_then_cancelled(conn, alice, bob), timeout=5)


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


KILL_ROUNDS = 150  # ~3 s of killing at one round per ~20 ms
POOL_SIZE = 4


async def test_backends_killed_over_and_over_are_unavailable_and_the_pool_heals(
    postgres_url: str,
) -> None:
    """F1: every call returns or raises StorageUnavailable while the server keeps killing the
    pool's backends; afterwards the pool has replaced its dead connections by itself."""
    database = urlsplit(postgres_url).path.lstrip("/")
    async with (
        open_storage(postgres_url, timeout=2, pool_size=POOL_SIZE) as storage,
        raw_connection(postgres_url) as run,
    ):
        await storage.migrate()
        alice, bob = await two_users(storage)
        group = await storage.create_group("g", alice.id)
        killing_done = trio.Event()
        outcomes = {"ok": 0, "unavailable": 0}
        acked: dict[str, int] = {}

        async def kill_backends() -> None:
            for _ in range(KILL_ROUNDS):
                await run(
                    lambda c: c.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = $1 AND pid <> pg_backend_pid()",
                        database,
                    )
                )
                await trio.sleep(0.02)
            killing_done.set()

        async def call(make: Callable[[], Awaitable[Any]]) -> Any:
            # Anything but a result or StorageUnavailable (a driver error, a hang) fails.
            try:
                with trio.fail_after(10):
                    result = await make()
            except StorageUnavailable:
                outcomes["unavailable"] += 1
                return None
            outcomes["ok"] += 1
            return result

        async def work(worker: int) -> None:
            n = 0
            while not killing_done.is_set():
                client_id = f"{worker}-{n}"
                batch = [NewDirectMessage(alice.id, bob.id, "hi", None, client_id)]
                stored = await call(lambda b=batch: storage.store_direct_messages(b))
                if stored is not None:
                    acked[client_id] = stored[0].message.id
                grouped = [NewGroupMessage(group.id, alice.id, "all", None, client_id)]
                await call(lambda g=grouped: storage.store_group_messages(g))
                await call(lambda: storage.direct_history(alice.id, bob.id, None, 20))
                await call(lambda: storage.user_by_id(bob.id))
                await call(lambda: storage.group_members(group.id))
                n += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(kill_backends)
            for worker in range(POOL_SIZE + 2):
                nursery.start_soon(work, worker)

        assert outcomes["unavailable"] > 0, "the backends were never killed under a call"
        # A connection whose backend died while idle is found out on its next use: at most
        # one failure per pooled connection, then every call succeeds again.
        for _ in range(POOL_SIZE):
            if await call(storage.ping) is None:
                continue
        for _ in range(20):
            with trio.fail_after(10):
                await storage.ping()
                assert await storage.user_by_id(alice.id) == alice
        for client_id, message_id in acked.items():
            stored = await storage.direct_by_client_id(alice.id, client_id)
            assert stored is not None and stored.id == message_id
