"""What only the SQLite backend has: its durability settings, checked by crashing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import trio

from hubbub.storage import open_storage
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
