"""What only the SQLite backend has: its durability settings, checked by crashing, and
what its deadline bounds."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import trio

from hubbub.storage import StorageUnavailable, open_storage
from hubbub.storage.sqlite import SqliteStorage

REPO = Path(__file__).resolve().parents[2]

# Stores a batch, prints the ids once store_direct_messages has returned (the moment a
# client would get its acks), then waits to be killed.
WRITER = """
import sys, trio
from hubbub.storage import NewDirectMessage, open_storage

async def main():
    async with open_storage(sys.argv[1]) as storage:
        await storage.migrate()
        alice = await storage.create_user("alice", "alice@example.org", "h")
        bob = await storage.create_user("bob", "bob@example.org", "h")
        batch = [NewDirectMessage(alice.id, bob.id, f"m{i}", None, f"c{i}") for i in range(50)]
        stored = await storage.store_direct_messages(batch)
        print(" ".join(str(s.message.id) for s in stored), flush=True)
        await trio.sleep_forever()

trio.run(main)
"""


async def test_connection_settings(sqlite_url: str) -> None:
    async with open_storage(sqlite_url) as storage:
        assert isinstance(storage, SqliteStorage)
        assert await storage._rows("PRAGMA journal_mode") == [("wal",)]
        assert await storage._rows("PRAGMA synchronous") == [(2,)]  # FULL
        assert await storage._rows("PRAGMA foreign_keys") == [(1,)]


async def test_nothing_acknowledged_is_lost_to_sigkill(sqlite_url: str) -> None:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", WRITER, sqlite_url], stdout=subprocess.PIPE, env=env
    )
    try:
        received = b""
        with trio.fail_after(30):
            while not received.endswith(b"\n"):
                chunk = await process.stdout.receive_some()
                assert chunk, "the writer exited before acknowledging"
                received += chunk
    finally:
        process.kill()
        await process.wait()
    acked = [int(i) for i in received.split()]
    assert len(acked) == 50
    async with open_storage(sqlite_url) as storage:
        stored = await storage.direct_history(1, 2, None, 100)
    assert [m.id for m in stored] == acked


async def test_a_read_stuck_past_the_deadline_is_unavailable_and_keeps_the_connection(
    sqlite_url: str,
) -> None:
    async with open_storage(sqlite_url, timeout=0.5) as storage:
        await storage.migrate()
        assert isinstance(storage, SqliteStorage)
        entered, release = threading.Event(), threading.Event()

        def stuck() -> int:  # a function SQLite cannot interrupt
            entered.set()
            release.wait(60)
            return 1

        storage._conn.create_function("stuck", 0, stuck)
        try:
            with trio.fail_after(10), pytest.raises(StorageUnavailable, match=r"within 0\.5 s"):
                await storage._rows("SELECT stuck()")
            assert entered.is_set()
            # The abandoned thread still has the connection: the next call waits for it,
            # up to its own deadline.
            with trio.fail_after(10), pytest.raises(StorageUnavailable, match="busy"):
                await storage.user_by_id(1)
        finally:
            release.set()
        with trio.fail_after(10):
            await storage.ping()


async def test_a_write_past_the_deadline_is_interrupted_and_writes_nothing(
    sqlite_url: str,
) -> None:
    # One statement that inserts a row at once and then scans without end: only an
    # interrupt stops it, and stopping it undoes the row.
    endless_insert = (
        "INSERT INTO users (username, email, password_hash, created_at)"
        " SELECT 'u' || x, 'e' || x, 'h', 0 FROM (WITH RECURSIVE c(x) AS"
        " (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c) WHERE x IN (1, -1)"
    )
    async with open_storage(sqlite_url, timeout=0.5) as storage:
        await storage.migrate()
        assert isinstance(storage, SqliteStorage)
        guard_fired = False

        async def guard() -> None:
            # Only so that a storage without a deadline fails this test instead of
            # running forever.
            nonlocal guard_fired
            await trio.sleep(10)
            guard_fired = True
            storage._conn.interrupt()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(guard)
            with pytest.raises(StorageUnavailable, match="nothing was written"):
                await storage._rows(endless_insert)
            nursery.cancel_scope.cancel()
        assert not guard_fired
        assert await storage.list_users() == []
        await storage.create_user("alice", "alice@example.org", "h")  # not left in a transaction


async def test_a_write_waiting_for_another_process_lock_is_unavailable(sqlite_url: str) -> None:
    async with open_storage(sqlite_url, timeout=0.5) as storage:
        await storage.migrate()
        other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with trio.fail_after(10), pytest.raises(StorageUnavailable):
                await storage.create_user("alice", "alice@example.org", "h")
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert await storage.list_users() == []
        await storage.create_user("alice", "alice@example.org", "h")
