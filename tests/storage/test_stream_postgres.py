"""The stream on PostgreSQL with several nodes committing at once, and the speed of the
conversation list."""

from __future__ import annotations

import statistics
import time
from contextlib import AsyncExitStack

import pytest
import trio

from hubbub.storage import NewDirectMessage, NewGroupMessage, Storage, open_storage
from hubbub.storage.postgres import PostgresStorage
from tests.helpers.polling import poll_until
from tests.storage.test_postgres import hold_uncommitted_duplicate, raw_connection

pytestmark = pytest.mark.postgres

NODES = 3
WRITERS_PER_NODE = 6
ROUNDS = 12
USERS = 6


async def test_readers_never_see_a_position_below_one_already_seen(postgres_url: str) -> None:
    """Three nodes (storages with pools of their own) commit batches and single events from
    many tasks while a fourth tails ``stream_after``: every position it sees is greater
    than the last, and what it saw is exactly the final stream, which has no holes."""
    async with AsyncExitStack() as stack:
        nodes: list[Storage] = [
            await stack.enter_async_context(open_storage(postgres_url, pool_size=4))
            for _ in range(NODES)
        ]
        tail = await stack.enter_async_context(open_storage(postgres_url, pool_size=2))
        await tail.migrate()
        users = [await tail.create_user(f"u{n}", f"u{n}@example.org", "h") for n in range(USERS)]
        group = await tail.create_group("g", users[0].id)
        for user in users[1:]:
            await tail.add_member(group.id, user.id)
        seen: list[int] = []
        writers_done = trio.Event()

        async def write(storage: Storage, name: str) -> None:
            for n in range(ROUNDS):
                batch = [
                    NewDirectMessage(
                        users[(n + i) % USERS].id,
                        users[(n + i + 1) % USERS].id,
                        "hi",
                        None,
                        f"{name}-{n}-{i}",
                    )
                    for i in range(3)
                ]
                stored = [s.message for s in await storage.store_direct_messages(batch)]
                author = users[n % USERS]
                await storage.store_group_messages(
                    [NewGroupMessage(group.id, author.id, "all", None, f"{name}-{n}")]
                )
                assert await storage.read_direct(stored[0].id, stored[0].recipient_id)
                assert await storage.react(
                    "direct", stored[1].id, None, stored[1].author_id, "x", True
                )
                assert await storage.read_group(group.id, users[(n + 3) % USERS].id, 2**62)

        async def read() -> None:
            last = 0
            while True:
                finished = writers_done.is_set()
                events = await tail.stream_after(last, 100)
                for event in events:
                    assert event.position > last
                    last = event.position
                    seen.append(last)
                if finished and not events:
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            async with trio.open_nursery() as writers:
                for number, storage in enumerate(nodes):
                    for w in range(WRITERS_PER_NODE):
                        writers.start_soon(write, storage, f"{number}.{w}")
            writers_done.set()

        final = [e.position for e in await tail.stream_after(0, 100_000)]
        events_per_round = 3 + 1 + 1 + 1 + 1
        assert len(final) == NODES * WRITERS_PER_NODE * ROUNDS * events_per_round
        assert final == list(range(1, len(final) + 1))
        assert seen == final
        assert (await tail.stream_state()).head == len(final)
        # Every message's stored position is its event's.
        for event in await tail.stream_after(0, 100_000):
            message = event.direct or event.group
            if message is not None:
                assert message.state.position == event.position


async def _deadlocks(run) -> int:
    """Deadlocks PostgreSQL counted in this database, once no other backend is left to
    flush its counts (a backend flushes them when it exits)."""

    async def alone() -> bool:
        return not await run(
            lambda c: c.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )

    await poll_until(alone, what="the other backends gone", timeout=10, interval=0.05)
    return await run(
        lambda c: c.fetchval(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        )
    )


async def test_batches_that_start_the_same_conversations_at_once_never_deadlock(
    postgres_url: str,
) -> None:
    """Every round, writers on three nodes send batches whose pairs are new conversations,
    overlapping and in different orders. A conversation row that one batch commits after
    another's snapshot must not be locked out of order (PostgreSQL would break the cycle
    only after deadlock_timeout, and a run of them outlasts the storage timeout)."""
    async with AsyncExitStack() as stack:
        nodes = [
            await stack.enter_async_context(open_storage(postgres_url, pool_size=3))
            for _ in range(NODES)
        ]
        await nodes[0].migrate()
        users = [await nodes[0].create_user(f"u{n}", f"u{n}@e.org", "h") for n in range(24)]

        async def write(storage: Storage, offset: int) -> None:
            for round_ in range(len(users) // 2):
                # Pairs (a, b) of this round, rotated per writer so batches overlap.
                pairs = [(a, (a + round_ + 1) % len(users)) for a in range(len(users))]
                pairs = pairs[offset:] + pairs[:offset]
                batch = [
                    NewDirectMessage(users[a].id, users[b].id, "hi", None) for a, b in pairs[:6]
                ]
                await storage.store_direct_messages(batch)

        async with trio.open_nursery() as writers:
            for number, storage in enumerate(nodes):
                for w in range(4):
                    writers.start_soon(write, storage, (number * 4 + w) * 5 % len(users))
    async with raw_connection(postgres_url) as run:
        assert await _deadlocks(run) == 0


async def test_a_page_of_conversations_is_fast(postgres_url: str) -> None:
    """1,000 conversations (950 direct, 50 groups) over 100,000 messages: a page of 50,
    first or deep, in well under 20 ms."""
    async with open_storage(postgres_url) as storage:
        assert isinstance(storage, PostgresStorage)
        await storage.migrate()
        run = storage._rows
        await run(
            "INSERT INTO users (username, email, password_hash)"
            " SELECT 'u' || n, 'u' || n || '@example.org', 'h' FROM generate_series(0, 950) n"
        )
        me = (await storage.user_by_username("u0")).id
        await run(
            "INSERT INTO direct_messages (author_id, recipient_id, body, status)"
            " SELECT CASE WHEN n % 2 = 0 THEN $1 ELSE u.id END,"
            " CASE WHEN n % 2 = 0 THEN u.id ELSE $1 END, 'm',"
            " CASE WHEN n < 90 THEN 'read' ELSE 'delivered' END"
            " FROM users u CROSS JOIN generate_series(0, 99) n WHERE u.id <> $1"
            " ORDER BY n, (u.id * 7919) % 1000",
            me,
        )
        await run("UPDATE direct_messages SET position = id")
        await run(
            "INSERT INTO direct_conversations (user_id, other_id, last_position, last_message_id,"
            " unread_count) SELECT user_id, other_id, max(position), max(id), sum(unread) FROM"
            " (SELECT author_id AS user_id, recipient_id AS other_id, position, id, 0 AS unread"
            " FROM direct_messages UNION ALL SELECT recipient_id, author_id, position, id,"
            " CASE WHEN status <> 'read' THEN 1 ELSE 0 END FROM direct_messages) AS sides"
            " GROUP BY user_id, other_id"
        )
        await run(
            "INSERT INTO groups (name, created_by) SELECT 'g' || n, $1"
            " FROM generate_series(1, 50) n",
            me,
        )
        await run(
            "INSERT INTO group_members (group_id, user_id, role)"
            " SELECT id, $1, 'admin' FROM groups",
            me,
        )
        await run(
            "INSERT INTO group_messages (group_id, author_id, body, position)"
            " SELECT g.id, $1, 'm', 95000 + row_number() OVER (ORDER BY n, g.id)"
            " FROM groups g CROSS JOIN generate_series(1, 100) n",
            me,
        )
        await run(
            "UPDATE groups g SET last_position = x.position, last_message_id = x.id FROM"
            " (SELECT group_id, max(position) AS position, max(id) AS id FROM group_messages"
            " GROUP BY group_id) AS x WHERE x.group_id = g.id"
        )
        await run("UPDATE stream_head SET position = 100000")
        assert (await run("SELECT count(*) FROM direct_messages"))[0][0] + (
            await run("SELECT count(*) FROM group_messages")
        )[0][0] == 100_000
        await run("ANALYZE")

        every = await storage.conversations(me, None, 1000)
        assert len(every) == 1000
        keys = [(c.key.position, c.key.kind, c.key.peer_id) for c in every]
        assert keys == sorted(keys, reverse=True)
        assert every[0].kind == "group"
        assert {c.unread_count for c in every if c.kind == "direct"} == {5}

        async def timed(before) -> float:
            started = time.perf_counter()
            page = await storage.conversations(me, before, 50)
            elapsed = time.perf_counter() - started
            assert len(page) == 50
            return elapsed

        for before in (None, every[500].key, every[940].key):
            await timed(before)  # warm
            median = statistics.median([await timed(before) for _ in range(15)])
            assert median < 0.020, f"a page took {median * 1000:.1f} ms"


async def _waiting(run) -> bool:
    return bool(await run(lambda c: c.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted")))


@pytest.mark.parametrize("kind", ["direct", "group"])
async def test_a_batch_takes_the_stream_head_after_its_other_locks(
    postgres_url: str, kind: str
) -> None:
    """A batch blocked on a conversation (or member) row, as held by a read in progress,
    must not hold the stream head meanwhile: another node appends, and the batch then
    continues from the new head. (Taking the head first would deadlock with that read,
    which takes the head last.)"""
    async with (
        open_storage(postgres_url) as storage,
        open_storage(postgres_url) as other,
        raw_connection(postgres_url) as run,
    ):
        await storage.migrate()
        alice = await storage.create_user("alice", "alice@example.org", "h")
        bob = await storage.create_user("bob", "bob@example.org", "h")
        group = await storage.create_group("g", alice.id)
        await storage.add_member(group.id, bob.id)
        if kind == "direct":
            [first] = await storage.store_direct_messages(
                [NewDirectMessage(alice.id, bob.id, "1", None)]
            )
            held = "UPDATE direct_conversations SET unread_count = unread_count WHERE user_id = $1"
            blocked = storage.store_direct_messages([NewDirectMessage(alice.id, bob.id, "2", None)])
        else:
            [first] = await storage.store_group_messages(
                [NewGroupMessage(group.id, alice.id, "1", None)]
            )
            held = "UPDATE group_members SET unread_count = unread_count WHERE user_id = $1"
            blocked = storage.store_group_messages([NewGroupMessage(group.id, alice.id, "2", None)])
        await run(lambda c: c.execute("BEGIN"))
        await run(lambda c: c.execute(held, bob.id))
        stored = []

        async def store() -> None:
            stored.extend(await blocked)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(store)
            await poll_until(
                lambda: _waiting(run), what="the batch waiting", timeout=10, interval=0.01
            )
            with trio.fail_after(5):
                edited = await other.edit_message(
                    kind, first.message.id, group.id, alice.id, "edited"
                )
            assert edited is not None and edited.position == 2
            await run(lambda c: c.execute("COMMIT"))
        assert stored[0].message.state.position == 3
        assert [e.position for e in await storage.stream_after(0, 10)] == [1, 2, 3]


async def test_a_raced_batch_gives_its_positions_back(postgres_url: str) -> None:
    async with open_storage(postgres_url) as storage, raw_connection(postgres_url) as run:
        await storage.migrate()
        alice = await storage.create_user("alice", "alice@example.org", "h")
        bob = await storage.create_user("bob", "bob@example.org", "h")
        await hold_uncommitted_duplicate(run, alice, bob)
        results = []

        async def store() -> None:
            batch = [
                NewDirectMessage(alice.id, bob.id, "second", None, "k"),
                NewDirectMessage(alice.id, bob.id, "other", None, None),
            ]
            results.extend(await storage.store_direct_messages(batch))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(store)
            await poll_until(
                lambda: _waiting(run), what="the batch waiting", timeout=10, interval=0.01
            )
            await run(lambda c: c.execute("COMMIT"))
        assert [r.created for r in results] == [False, True]
        assert results[0].message.body == "first"
        # The raw insert took no position; the batch's one new message took the first.
        assert results[1].message.state.position == 1
        assert [e.message_id for e in await storage.stream_after(0, 10)] == [results[1].message.id]
        assert (await storage.stream_state()).head == 1
        [bobs] = await storage.conversations(bob.id, None, 10)
        assert bobs.unread_count == 1  # the raw row made no conversation counts
