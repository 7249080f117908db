"""The chat actors on their own: real SQLite storage, the in-process bus, peers that
record what they are sent. These are the overload and restart paths an end-to-end test
cannot reach on purpose; each was a silent loss before (the reliability issue)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio

from hubbub.engine.chat import Chat, build_chat
from hubbub.engine.chat.group_actor import GroupActor
from hubbub.engine.chat.ports import Event, Subscriber
from hubbub.engine.cluster.local import InProcessRateLimiter, LocalBus, LocalPresence
from hubbub.engine.runtime.actor import MailboxFull
from hubbub.engine.runtime.supervisor import Supervisor
from hubbub.metrics import Metrics
from hubbub.storage import Storage, open_storage


@attrs.define(eq=False)
class RecordingPeer:
    """A connected device that records frames and the close it was asked for."""

    user_id: int
    username: str
    frames: list[bytes] = attrs.Factory(list)
    closed: tuple[int, str] | None = None
    closed_event: trio.Event = attrs.Factory(trio.Event)
    since: str | None = None

    def push(self, payload: bytes, delivers: int | None = None) -> bool:
        self.frames.append(payload)
        return self.closed is None

    async def send(self, payload: bytes) -> bool:
        return self.push(payload)

    async def flushed(self) -> bool:
        return self.closed is None

    def refuse(self, reason: str, client_id: str | None = None) -> None:
        self.frames.append(reason.encode())

    async def reserve_send(self) -> bool:
        return True

    def settle_send(self) -> None:
        pass

    def close_soon(self, code: int, reason: str) -> None:
        if self.closed is None:
            self.closed = (code, reason)
            self.closed_event.set()


class StuckBus(LocalBus):
    """The in-process bus whose subscribes do not finish until ``release`` is set: a far
    Redis, as slow as the test wants."""

    def __init__(self) -> None:
        super().__init__()
        self.release = trio.Event()
        self.waiting = 0

    async def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        self.waiting += 1
        await self.release.wait()
        await super().subscribe(channel, subscriber)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    async with open_storage(f"sqlite:///{tmp_path / 'chat.db'}") as opened:
        await opened.migrate()
        yield opened


def chat_on(storage: Storage, bus: LocalBus | None = None) -> Chat:
    return build_chat(
        storage=storage,
        bus=bus or LocalBus(),
        presence=LocalPresence(),
        rate_limiter=InProcessRateLimiter({"direct": 1000, "group": 1000}, 60.0),
        metrics=Metrics(),
        image_policy=None,
    )


async def test_sessions_of_actors_stopped_by_their_supervisor_are_closed(
    storage: Storage,
) -> None:
    """Not connected but deaf: when the users supervisor stops its children (it gave up,
    or the node stops), every session still attached is closed so it reconnects."""
    alice = await storage.create_user("alice", "a@example.com", "x")
    chat = chat_on(storage)
    root = Supervisor("test", chat.children)
    peers = [RecordingPeer(alice.id, "alice"), RecordingPeer(alice.id, "alice")]
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        for peer in peers:
            await chat.dispatcher.session_opened(peer)
        assert [peer.closed for peer in peers] == [None, None]
        await root.terminate_child("users")
        with trio.fail_after(5):
            for peer in peers:
                await peer.closed_event.wait()
        nursery.cancel_scope.cancel()
    assert [peer.closed[0] for peer in peers if peer.closed] == [1011, 1011]


async def test_actor_starts_do_not_wait_on_the_bus_one_after_another(
    storage: Storage,
) -> None:
    """Five users connecting at once while the bus does not answer: each actor reports
    started first and subscribes as its first piece of work, so every start returns
    while all five subscribes are still waiting (they took 2, 4, 6, 8 and 10 s, one
    after another, when the subscribe came before the start)."""
    users = [await storage.create_user(f"u{n}", f"u{n}@example.com", "x") for n in range(5)]
    bus = StuckBus()
    chat = chat_on(storage, bus)
    root = Supervisor("test", chat.children)
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        with trio.fail_after(5):
            async with trio.open_nursery() as starts:
                for user in users:
                    starts.start_soon(chat.users.ensure, user.id)
        assert not bus.release.is_set()
        assert all(chat.users.get(user.id) is not None for user in users)
        bus.release.set()
        nursery.cancel_scope.cancel()


async def test_a_full_group_mailbox_closes_the_members_sessions_and_is_counted(
    storage: Storage,
) -> None:
    """A group event that finds the mailbox full is not dropped silently: the members
    here are closed as slow consumers (they reconnect and sync), and it is counted."""
    closed: list[int] = []

    class Users:
        def close_slow(self, user_id: int) -> None:
            closed.append(user_id)

        def is_here(self, user_id: int) -> bool:
            return True

    metrics = Metrics()
    actor = GroupActor(
        group_id=7,
        storage=storage,
        bus=LocalBus(),
        users=Users(),
        metrics=metrics,  # type: ignore[arg-type]
    )
    actor.members = frozenset({1, 2})
    with pytest.raises(MailboxFull):
        while True:  # the actor is not running: fill its mailbox
            actor.tell_nowait(Event("group", b"{}", None))
    actor._on_event(Event("group", b"{}", 99))
    assert sorted(closed) == [1, 2]
    assert metrics.registry.get_sample_value("hubbub_group_mailbox_overflows_total") == 1
