"""Actor: mailbox, tell/ask, crash semantics, passivation, custom loops."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import wait_all_tasks_blocked

from hubbub.engine.runtime.actor import Actor, ActorStopped, AskTimeout, Envelope, MailboxFull


class Boom(Exception):
    pass


class Recorder(Actor):
    """Records what it handles and echoes it; "block" waits for ``gate``, "crash" raises."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("recorder", **kwargs)
        self.handled: list[object] = []
        self.gate = trio.Event()

    async def handle(self, message: object) -> object:
        if message == "crash":
            raise Boom("asked to crash")
        if message == "block":
            await self.gate.wait()
        self.handled.append(message)
        return ("echo", message)


async def run_catching(
    actor: Actor, errors: list[BaseException], *, task_status: trio.TaskStatus[Any]
) -> None:
    """Run ``actor``, keeping its crash instead of cancelling the test's nursery."""
    try:
        await actor.run(task_status=task_status)
    except Exception as error:
        errors.append(error)


async def test_tells_and_asks_are_handled_in_order() -> None:
    actor = Recorder()
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        assert actor.state == "running"
        actor.tell_nowait("a")
        await actor.tell("b")
        assert await actor.ask("c", timeout=5) == ("echo", "c")
        assert actor.handled == ["a", "b", "c"]
        nursery.cancel_scope.cancel()
    assert actor.state == "stopped"


async def test_ask_times_out_and_the_late_reply_is_dropped(autojump_clock: trio.abc.Clock) -> None:
    actor = Recorder()
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        with pytest.raises(AskTimeout):
            await actor.ask("block", timeout=1)
        actor.gate.set()  # the handler now finishes and replies to nobody
        assert await actor.ask("next", timeout=1) == ("echo", "next")
        assert actor.handled == ["block", "next"]
        assert actor.state == "running"
        nursery.cancel_scope.cancel()


async def test_full_mailbox_refuses_tell_nowait_and_makes_tell_wait(
    autojump_clock: trio.abc.Clock,
) -> None:
    actor = Recorder(mailbox_size=2)
    delivered = trio.Event()

    async def tell_late() -> None:
        await actor.tell("late")
        delivered.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        actor.tell_nowait("block")
        await wait_all_tasks_blocked()  # the actor took "block" and waits in handle
        actor.tell_nowait("x")
        actor.tell_nowait("y")
        assert actor.mailbox_depth == 2
        with pytest.raises(MailboxFull):
            actor.tell_nowait("refused")
        with pytest.raises(MailboxFull):
            await actor.tell("refused", timeout=3)
        nursery.start_soon(tell_late)
        await wait_all_tasks_blocked()
        assert not delivered.is_set()  # back-pressure: still waiting for room
        actor.gate.set()
        with trio.fail_after(5):
            await delivered.wait()
        assert await actor.ask("end", timeout=5) == ("echo", "end")
        assert actor.handled == ["block", "x", "y", "late", "end"]
        nursery.cancel_scope.cancel()


async def test_a_failing_ask_reaches_the_asker_and_crashes_the_actor() -> None:
    actor = Recorder()
    errors: list[BaseException] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(run_catching, actor, errors)
        with pytest.raises(Boom):
            await actor.ask("crash", timeout=5)
    assert len(errors) == 1 and isinstance(errors[0], Boom)
    assert actor.state == "crashed"
    with pytest.raises(ActorStopped):
        actor.tell_nowait("after")
    with pytest.raises(ActorStopped):
        await actor.ask("after", timeout=5)


async def test_asks_queued_in_a_stopping_actor_fail_at_once() -> None:
    actor = Recorder()
    outcome: list[BaseException] = []

    async def ask_queued() -> None:
        try:
            await actor.ask("queued", timeout=3600)
        except ActorStopped as error:
            outcome.append(error)

    async with trio.open_nursery() as nursery:
        actor_scope = trio.CancelScope()

        async def run_actor(*, task_status: trio.TaskStatus[None]) -> None:
            with actor_scope:
                await actor.run(task_status=task_status)

        await nursery.start(run_actor)
        actor.tell_nowait("block")
        nursery.start_soon(ask_queued)
        await wait_all_tasks_blocked()
        assert actor.mailbox_depth == 1
        actor_scope.cancel()
    assert len(outcome) == 1  # ActorStopped, long before the hour-long timeout
    assert actor.state == "stopped"


async def test_an_idle_actor_passivates_and_then_refuses(autojump_clock: trio.abc.Clock) -> None:
    actor = Recorder(idle_timeout=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        actor.tell_nowait("a")
        start = trio.current_time()
    # run returned by itself: the nursery closed without being cancelled.
    assert trio.current_time() - start >= 10
    assert actor.state == "stopped"
    assert actor.handled == ["a"]
    with pytest.raises(ActorStopped):
        actor.tell_nowait("b")


async def test_passivation_waits_for_queued_messages_and_can_passivate(
    autojump_clock: trio.abc.Clock,
) -> None:
    class Sticky(Recorder):
        keep = True

        def can_passivate(self) -> bool:
            return not self.keep

    actor = Sticky(idle_timeout=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        actor.tell_nowait("block")
        actor.tell_nowait("queued")
        await trio.sleep(100)  # far past the idle timeout, while the handler is busy
        actor.gate.set()
        await trio.sleep(100)  # idle again, but can_passivate() says no
        assert actor.state == "running"
        actor.keep = False
    assert actor.handled == ["block", "queued"]
    assert actor.state == "stopped"


async def test_a_tell_racing_passivation_is_handled_or_refused(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The teller wakes at the very instant the idle timeout fires; whichever runs
    # first, the message must be handled or refused, never silently dropped.
    for _ in range(20):
        actor = Recorder(idle_timeout=10)
        refused = False
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run)
            await trio.sleep_until(trio.current_time() + 10)
            try:
                actor.tell_nowait("raced")
            except ActorStopped:
                refused = True
        assert (actor.handled == ["raced"]) != refused


async def test_a_custom_loop_batches_with_next_envelope_and_drain_nowait() -> None:
    class Batcher(Actor):
        def __init__(self) -> None:
            super().__init__("batcher")
            self.batches: list[list[object]] = []

        async def run(
            self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
        ) -> None:
            task_status.started()
            while True:
                first = await self.next_envelope()
                batch = [first, *self.drain_nowait(10)]
                self.batches.append([envelope.message for envelope in batch])
                for envelope in batch:
                    envelope.reply(len(batch))

    actor = Batcher()
    replies: list[object] = []

    async def ask(message: str) -> None:
        replies.append(await actor.ask(message, timeout=5))

    actor.tell_nowait("a")
    actor.tell_nowait("b")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, "c")
        await wait_all_tasks_blocked()  # "c" is queued behind "a" and "b"
        await nursery.start(actor.run)
        assert actor.state == "running"
        await wait_all_tasks_blocked()  # the first batch is done
        assert await actor.ask("d", timeout=5) == 1
        nursery.cancel_scope.cancel()
    assert actor.batches == [["a", "b", "c"], ["d"]]
    assert replies == [3]
    assert actor.state == "stopped"


def test_envelopes_answer_once_and_tells_need_no_answer() -> None:
    request = Envelope("q", trio.Event())
    assert request.wants_reply
    request.reply(1)
    request.fail(Boom())  # too late: the first answer stands
    assert not request.wants_reply
    assert request._value == 1 and request._error is None
    tell = Envelope("t")
    assert not tell.wants_reply
    tell.reply(2)  # harmless


async def test_snapshot_and_running_once() -> None:
    actor = Recorder()
    actor.tell_nowait("a")
    actor.tell_nowait("b")
    assert actor.snapshot() == {
        "name": "recorder",
        "state": "starting",
        "restarts": 0,
        "mailbox_depth": 2,
        "children": [],
    }
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        nursery.cancel_scope.cancel()
    with pytest.raises(RuntimeError, match="runs once"):
        await actor.run()
