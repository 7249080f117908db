"""The StorageWriter under faults: every write gets exactly one answer.

- A writer that crashes answers the batch it held, and its successor reads on from the
  same mailbox, so nothing queued is lost (failure F2 of the reliability issue).
- A batch the database refuses for a data reason is retried one by one: only the
  offending write is refused (failure F3).
- Delivery marks storage could not take (an outage) are kept and land once it answers
  again, alone or with the next batch: a message that reached its socket during the
  outage does not read as pending after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import trio

from hubbub.engine.chat.messages import MarkDelivered, StoreDirect
from hubbub.engine.chat.storage_writer import StorageWriter
from hubbub.engine.runtime.actor import Mailbox
from hubbub.storage import InvalidData, NewDirectMessage, Storage, StorageError, open_storage


class Answers:
    """Every answer the writer gave, by request origin."""

    def __init__(self) -> None:
        self.acked: list[object] = []
        self.refused: dict[object, StorageError] = {}
        self.changed = trio.Event()

    async def on_committed(self, requests: Sequence[StoreDirect], stored: Sequence) -> None:
        self.acked.extend(request.origin for request in requests)
        self._changed()

    def on_failed(self, requests: Sequence[StoreDirect], error: StorageError) -> None:
        for request in requests:
            assert request.origin not in self.refused, "answered twice"
            self.refused[request.origin] = error
        self._changed()

    def _changed(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def wait_for(self, answers: int) -> None:
        with trio.fail_after(10):
            while len(self.acked) + len(self.refused) < answers:
                await self.changed.wait()


class Faulty:
    """A real storage whose batch insert first crashes once (a bug, not an outage), or
    refuses bodies containing NUL as the database's data check would."""

    def __init__(self, storage: Storage, *, crash_once: bool = False) -> None:
        self._storage = storage
        self.crash_once = crash_once
        self.calls = 0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._storage, name)

    async def store_direct_messages(self, batch, delivered_ids=()):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.crash_once:
            self.crash_once = False
            raise RuntimeError("a bug in the storage layer")
        if any("\x00" in (m.body or "") for m in batch):
            raise InvalidData("NUL in text")
        return await self._storage.store_direct_messages(batch, delivered_ids)


@pytest.fixture
async def sqlite_storage(tmp_path: Path) -> AsyncIterator[Storage]:
    async with open_storage(f"sqlite:///{tmp_path / 'w.db'}") as opened:
        await opened.migrate()
        yield opened


async def users(storage: Storage) -> tuple[int, int]:
    alice = await storage.create_user("alice", "a@example.com", "x")
    bob = await storage.create_user("bob", "b@example.com", "x")
    return alice.id, bob.id


async def test_a_crashed_writer_answers_what_it_held_and_its_successor_reads_on(
    sqlite_storage: Storage,
) -> None:
    alice, bob = await users(sqlite_storage)
    faulty, answers, mailbox = Faulty(sqlite_storage, crash_once=True), Answers(), Mailbox(64)
    for number in range(20):
        message = NewDirectMessage(alice, bob, f"m{number}", None, f"c{number}")
        mailbox.tell_nowait(StoreDirect(message, origin=number))

    def writer() -> StorageWriter:
        return StorageWriter(
            faulty,  # type: ignore[arg-type]
            on_committed=answers.on_committed,
            on_failed=answers.on_failed,
            mailbox=mailbox,
        )

    first = writer()
    with pytest.raises(RuntimeError):
        await first.run()
    # It took every queued write into its one batch, and refused that batch on the way out.
    assert sorted(answers.refused) == list(range(20))
    for number in range(20, 30):
        message = NewDirectMessage(alice, bob, f"m{number}", None, f"c{number}")
        mailbox.tell_nowait(StoreDirect(message, origin=number))
    async with trio.open_nursery() as nursery:
        await nursery.start(writer().run)
        await answers.wait_for(30)
        nursery.cancel_scope.cancel()
    assert answers.acked == list(range(20, 30))
    assert len(answers.acked) + len(answers.refused) == 30


async def test_a_poisoned_batch_refuses_only_the_offender(sqlite_storage: Storage) -> None:
    alice, bob = await users(sqlite_storage)
    faulty, answers, mailbox = Faulty(sqlite_storage), Answers(), Mailbox(64)
    for number in range(10):
        body = "bad\x00" if number == 4 else f"m{number}"
        mailbox.tell_nowait(StoreDirect(NewDirectMessage(alice, bob, body, None), origin=number))
    writer = StorageWriter(
        faulty,  # type: ignore[arg-type]
        on_committed=answers.on_committed,
        on_failed=answers.on_failed,
        mailbox=mailbox,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        await answers.wait_for(10)
        nursery.cancel_scope.cancel()
    assert list(answers.refused) == [4]
    assert isinstance(answers.refused[4], InvalidData)
    assert answers.acked == [n for n in range(10) if n != 4]
    history = await sqlite_storage.direct_history(alice, bob, None, 100)
    assert [m.body for m in history] == [f"m{n}" for n in range(10) if n != 4]


class Outage:
    """A real storage that refuses every write while ``down`` (as an unreachable
    database does), and says when a mark or a batch was tried."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.down = True
        self.tried = trio.Event()

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._storage, name)

    def _try(self) -> None:
        self.tried.set()
        self.tried = trio.Event()
        if self.down:
            raise StorageError("database unreachable")

    async def mark_delivered(self, message_ids):  # type: ignore[no-untyped-def]
        self._try()
        return await self._storage.mark_delivered(message_ids)

    async def store_direct_messages(self, batch, delivered_ids=()):  # type: ignore[no-untyped-def]
        self._try()
        return await self._storage.store_direct_messages(batch, delivered_ids)


@pytest.mark.parametrize("then", ["alone", "with a batch"])
async def test_delivery_marks_refused_in_an_outage_land_once_storage_answers(
    sqlite_storage: Storage, then: str
) -> None:
    alice, bob = await users(sqlite_storage)
    earlier = await sqlite_storage.store_direct_messages([NewDirectMessage(alice, bob, "m", None)])
    message_id = earlier[0].message.id
    outage, answers, mailbox = Outage(sqlite_storage), Answers(), Mailbox(64)
    writer = StorageWriter(
        outage,  # type: ignore[arg-type]
        on_committed=answers.on_committed,
        on_failed=answers.on_failed,
        mailbox=mailbox,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        tried = outage.tried
        mailbox.tell_nowait(MarkDelivered((message_id,)))
        with trio.fail_after(10):
            await tried.wait()  # refused: the outage
        if then == "with a batch":
            # A batch in the outage is refused too, and the marks stay kept.
            mailbox.tell_nowait(StoreDirect(NewDirectMessage(alice, bob, "x", None), origin=1))
            await answers.wait_for(1)
            assert list(answers.refused) == [1]
        assert (await sqlite_storage.direct_message(message_id)).status == "pending"
        outage.down = False
        if then == "with a batch":
            mailbox.tell_nowait(StoreDirect(NewDirectMessage(alice, bob, "y", None), origin=2))
            await answers.wait_for(2)
        with trio.fail_after(10):
            while (await sqlite_storage.direct_message(message_id)).status != "delivered":
                await outage.tried.wait()
        nursery.cancel_scope.cancel()
    assert (await sqlite_storage.direct_message(message_id)).status == "delivered"
