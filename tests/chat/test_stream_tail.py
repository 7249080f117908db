"""The stream tail on its own, over real SQLite storage: it dispatches every committed
event once, in position order, whether the event was offered in memory, arrived out of
order, or was committed by someone else and is only in storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from hubbub.engine.chat.directory import UserDirectory
from hubbub.engine.chat.render import StreamRenderer
from hubbub.engine.chat.stream import StreamTail
from hubbub.engine.cluster.local import LocalBus
from hubbub.storage import NewDirectMessage, Storage, StreamEvent, open_storage

WAIT = 10.0


@attrs.define
class CountingStorage:
    """Real storage; counts the stream reads the tail makes."""

    inner: Storage
    reads: int = 0

    async def stream_after(self, after: int, limit: int) -> list[StreamEvent]:
        self.reads += 1
        return await self.inner.stream_after(after, limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@attrs.define
class Dispatched:
    positions: list[int] = attrs.Factory(list)
    frames: list[bytes] = attrs.Factory(list)
    changed: trio.Event = attrs.Factory(trio.Event)

    def __call__(self, event: StreamEvent, frame: bytes, own: bytes | None) -> None:
        self.positions.append(event.position)
        self.frames.append(frame)
        self.changed.set()
        self.changed = trio.Event()

    async def until(self, count: int) -> None:
        with trio.fail_after(WAIT):
            while len(self.positions) < count:
                await self.changed.wait()


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    async with open_storage(f"sqlite:///{tmp_path / 'tail.db'}") as opened:
        await opened.migrate()
        yield opened


async def _users(storage: Storage) -> tuple[int, int]:
    a = await storage.create_user("ann", "ann@example.org", "x")
    b = await storage.create_user("ben", "ben@example.org", "x")
    return a.id, b.id


async def _commit(storage: Storage, a: int, b: int, count: int) -> list[StreamEvent]:
    """``count`` messages a -> b, committed; their stream events as a commit hands them."""
    stored = await storage.store_direct_messages(
        [NewDirectMessage(a, b, f"m{k}", None) for k in range(count)]
    )
    return [
        StreamEvent(
            position=s.message.state.position,
            kind="message",
            user_ids=(a, b),
            message_id=s.message.id,
            actor_id=a,
            direct=s.message,
        )
        for s in stored
    ]


async def _running_tail(
    nursery: trio.Nursery, storage: Any, dispatched: Dispatched, poll: float = 60.0
) -> StreamTail:
    renderer = StreamRenderer(directory=UserDirectory(storage), group_name=_no_group)
    tail = StreamTail(storage, renderer, dispatched, bus=LocalBus(), poll_interval=poll)
    await nursery.start(tail.run)
    return tail


async def _no_group(group_id: int) -> str | None:
    return None


async def test_offered_events_that_continue_the_stream_are_dispatched_without_a_read(
    storage: Storage,
) -> None:
    a, b = await _users(storage)
    counting = CountingStorage(storage)
    dispatched = Dispatched()
    async with trio.open_nursery() as nursery:
        tail = await _running_tail(nursery, counting, dispatched)
        await trio.testing.wait_all_tasks_blocked()  # its start-up read is done
        reads = counting.reads
        events = await _commit(storage, a, b, 5)
        tail.committed(events)
        await dispatched.until(5)
        assert dispatched.positions == [e.position for e in events]
        assert counting.reads == reads
        assert tail.position == events[-1].position
        assert all(b'"cursor"' in frame for frame in dispatched.frames)
        nursery.cancel_scope.cancel()


async def test_an_event_offered_before_the_one_below_it_waits_for_it(storage: Storage) -> None:
    a, b = await _users(storage)
    dispatched = Dispatched()
    async with trio.open_nursery() as nursery:
        tail = await _running_tail(nursery, storage, dispatched)
        first, second = await _commit(storage, a, b, 2)
        tail.offer([second])
        tail.offer([first])
        await dispatched.until(2)
        assert dispatched.positions == [first.position, second.position]
        nursery.cancel_scope.cancel()


async def test_a_hole_committed_elsewhere_is_read_from_storage_in_order(
    storage: Storage,
) -> None:
    """Another node committed the first three: they are never offered here. The tail
    reads them, dispatches them before the offered one, and each event once."""
    a, b = await _users(storage)
    counting = CountingStorage(storage)
    dispatched = Dispatched()
    async with trio.open_nursery() as nursery:
        tail = await _running_tail(nursery, counting, dispatched)
        elsewhere = await _commit(storage, a, b, 3)
        here = await _commit(storage, a, b, 1)
        tail.offer(here)
        await dispatched.until(4)
        assert dispatched.positions == [e.position for e in elsewhere + here]
        assert counting.reads >= 1
        tail.offer(here)  # a late copy of what was dispatched: ignored
        more = await _commit(storage, a, b, 1)
        tail.offer(more)
        await dispatched.until(5)
        assert dispatched.positions == [e.position for e in elsewhere + here + more]
        nursery.cancel_scope.cancel()


async def test_a_wake_up_or_a_poll_reads_what_other_nodes_committed(storage: Storage) -> None:
    a, b = await _users(storage)
    dispatched = Dispatched()
    async with trio.open_nursery() as nursery:
        tail = await _running_tail(nursery, storage, dispatched)
        elsewhere = await _commit(storage, a, b, 2)
        tail.wake(elsewhere[-1].position)
        await dispatched.until(2)
        assert dispatched.positions == [e.position for e in elsewhere]
        nursery.cancel_scope.cancel()
    polled = Dispatched()
    async with trio.open_nursery() as nursery:
        tail = await _running_tail(nursery, storage, polled, poll=0.05)
        later = await _commit(storage, a, b, 3)  # nobody says so: the poll finds them
        await polled.until(3)
        assert polled.positions == [e.position for e in later]
        nursery.cancel_scope.cancel()
