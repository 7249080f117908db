"""The StorageWriter: group commit, answers after the commit, delivery marks that ride
along with the next batch (or go alone after a short wait)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
import trio

from hubbub.engine.chat.messages import MarkDelivered, StoreDirect
from hubbub.engine.chat.storage_writer import StorageWriter
from hubbub.engine.chat.writes import WriteGate
from hubbub.engine.cluster.local import InProcessRateLimiter
from hubbub.engine.runtime.actor import Mailbox
from hubbub.storage import DirectMessage, NewDirectMessage, Storage, StoredDirect, open_storage


class Recorder:
    """Collects what the writer answers, and lets a test wait for it."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[StoreDirect, StoredDirect]]] = []
        self.changed = trio.Event()

    async def on_committed(self, requests: Sequence, stored: Sequence) -> None:
        self.batches.append(list(zip(requests, stored, strict=True)))
        self.changed.set()
        self.changed = trio.Event()

    def on_failed(self, requests: Sequence, error: Exception) -> None:
        raise AssertionError(f"write failed: {error}")

    async def wait_for(self, messages: int) -> None:
        with trio.fail_after(10):
            while sum(len(batch) for batch in self.batches) < messages:
                await self.changed.wait()


class MarkSpy:
    """Wraps a real storage to signal when delivery marks are committed on their own."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.marked = trio.Event()

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._storage, name)

    async def mark_delivered(self, message_ids: Sequence[int]) -> None:
        await self._storage.mark_delivered(message_ids)
        self.marked.set()


@pytest.fixture
async def sqlite_storage(sqlite_url: str) -> AsyncIterator[Storage]:
    """An opened, migrated SQLite storage (not the root ``storage``, which runs each
    backend in turn: the writer's batching is the same on both)."""
    async with open_storage(sqlite_url) as opened:
        await opened.migrate()
        yield opened


@pytest.fixture
async def earlier(sqlite_storage: Storage) -> DirectMessage:
    """A pending message from alice to bob, stored before the writer starts."""
    alice = await sqlite_storage.create_user("alice", "a@example.com", "x")
    bob = await sqlite_storage.create_user("bob", "b@example.com", "x")
    [stored] = await sqlite_storage.store_direct_messages(
        [NewDirectMessage(alice.id, bob.id, "e", None)]
    )
    return stored.message


async def start_writer(nursery: trio.Nursery, storage: object, recorder: Recorder) -> StorageWriter:
    writer = StorageWriter(
        storage,  # type: ignore[arg-type]
        on_committed=recorder.on_committed,
        on_failed=recorder.on_failed,
    )
    await nursery.start(writer.run)
    return writer


async def test_queued_sends_commit_together_and_are_answered_in_order(
    sqlite_storage: Storage,
) -> None:
    alice = await sqlite_storage.create_user("alice", "a@example.com", "x")
    bob = await sqlite_storage.create_user("bob", "b@example.com", "x")
    recorder = Recorder()
    async with trio.open_nursery() as nursery:
        writer = await start_writer(nursery, sqlite_storage, recorder)
        for number in range(50):
            message = NewDirectMessage(alice.id, bob.id, f"m{number}", None, f"c{number}")
            writer.tell_nowait(StoreDirect(message, origin=number))
        await recorder.wait_for(50)
        nursery.cancel_scope.cancel()
    answered = [request.origin for batch in recorder.batches for request, _ in batch]
    assert answered == list(range(50))
    assert len(recorder.batches) < 50  # grouped: fewer commits than messages
    history = await sqlite_storage.direct_history(alice.id, bob.id, None, 100)
    assert [m.body for m in history] == [f"m{n}" for n in range(50)]


async def test_delivery_marks_ride_with_the_next_batch(
    sqlite_storage: Storage, earlier: DirectMessage
) -> None:
    spy, recorder = MarkSpy(sqlite_storage), Recorder()
    async with trio.open_nursery() as nursery:
        writer = await start_writer(nursery, spy, recorder)
        writer.tell_nowait(MarkDelivered((earlier.id,)))
        writer.tell_nowait(
            StoreDirect(
                NewDirectMessage(earlier.author_id, earlier.recipient_id, "n", None), origin=1
            )
        )
        await recorder.wait_for(1)
        nursery.cancel_scope.cancel()
    assert not spy.marked.is_set()  # no commit of its own
    assert (await sqlite_storage.direct_message(earlier.id)).status == "delivered"


async def test_a_lone_delivery_mark_commits_after_a_short_wait(
    sqlite_storage: Storage, earlier: DirectMessage
) -> None:
    spy, recorder = MarkSpy(sqlite_storage), Recorder()
    async with trio.open_nursery() as nursery:
        writer = await start_writer(nursery, spy, recorder)
        writer.tell_nowait(MarkDelivered((earlier.id,)))
        with trio.fail_after(5):
            await spy.marked.wait()
        nursery.cancel_scope.cancel()
    assert (await sqlite_storage.direct_message(earlier.id)).status == "delivered"


def gate_on(mailbox: Mailbox, storage: Storage) -> WriteGate:
    """The gate that sessions hand their delivery marks and flushes to (``mailbox``)."""
    limiter = InProcessRateLimiter({"direct": 10, "group": 10}, window=60.0)
    return WriteGate(mailbox=mailbox, storage=storage, rate_limiter=limiter)


async def test_a_flush_returns_once_the_marks_queued_before_it_are_committed(
    sqlite_storage: Storage, earlier: DirectMessage
) -> None:
    """What a closing session waits for (``ChatDispatcher.session_closed``) before the
    client hears its close answered: a reconnect anywhere reads these as delivered."""
    mailbox, recorder = Mailbox(16), Recorder()
    gate = gate_on(mailbox, sqlite_storage)
    async with trio.open_nursery() as nursery:
        writer = StorageWriter(
            sqlite_storage,
            on_committed=recorder.on_committed,
            on_failed=recorder.on_failed,
            mailbox=mailbox,
        )
        await nursery.start(writer.run)
        gate.mark_delivered([earlier.id])
        assert await gate.flush_delivered(timeout=10)
        # Read at once: no wait for the writer's own delay (DELIVERED_DELAY) in between.
        assert (await sqlite_storage.direct_message(earlier.id)).status == "delivered"
        nursery.cancel_scope.cancel()


async def test_a_flush_nobody_reads_gives_up_after_its_timeout(sqlite_storage: Storage) -> None:
    gate = gate_on(Mailbox(16), sqlite_storage)
    with trio.fail_after(10):
        assert not await gate.flush_delivered(timeout=0.05)
