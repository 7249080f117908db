"""Supervisor: restart types, strategies, intensity, dynamic children, snapshots."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
from trio.testing import MockClock, wait_all_tasks_blocked

from hubbub.engine.runtime.actor import Actor, ActorStopped
from hubbub.engine.runtime.supervisor import (
    ChildSpec,
    Restart,
    Strategy,
    Supervisor,
    SupervisorGaveUp,
)


class Boom(Exception):
    pass


class Worker(Actor):
    """Answers "ping" with itself; "crash" raises; "quit" returns normally; "block"
    waits for ``gate``. Records its start and stop in the shared ``log``."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__(name)
        self.log = log
        self.gate = trio.Event()
        self._quit = trio.CancelScope()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.log.append(f"start:{self.name}")
        try:
            with self._quit:
                await super().run(task_status=task_status)
        finally:
            self.log.append(f"stop:{self.name}")

    async def handle(self, message: object) -> object:
        if message == "crash":
            raise Boom(self.name)
        if message == "quit":
            self._quit.cancel()
        if message == "block":
            await self.gate.wait()
        return self


@attrs.define
class Tree:
    """What the factories built and what the supervisor reported."""

    log: list[str] = attrs.Factory(list)
    built: dict[str, list[Worker]] = attrs.Factory(dict)
    restarts: list[tuple[str, str, BaseException | None]] = attrs.Factory(list)

    def spec(self, name: str, restart: Restart = Restart.PERMANENT) -> ChildSpec:
        def build() -> Worker:
            worker = Worker(name, self.log)
            self.built.setdefault(name, []).append(worker)
            return worker

        return ChildSpec(name, build, restart)

    def on_restart(self, supervisor: str, child: str, error: BaseException | None) -> None:
        self.restarts.append((supervisor, child, error))


@asynccontextmanager
async def supervising(supervisor: Supervisor) -> AsyncIterator[Supervisor]:
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        yield supervisor
        nursery.cancel_scope.cancel()


async def run_catching(
    supervisor: Supervisor, errors: list[BaseException], *, task_status: trio.TaskStatus[Any]
) -> None:
    try:
        await supervisor.run(task_status=task_status)
    except Exception as error:
        errors.append(error)


async def crash(supervisor: Supervisor, name: str) -> None:
    """Crash the named child through an ask, then let the supervisor react."""
    child = supervisor.child(name)
    assert isinstance(child, Worker)
    with pytest.raises(Boom):
        await child.ask("crash", timeout=5)
    await wait_all_tasks_blocked()


async def quit(supervisor: Supervisor, name: str) -> None:
    child = supervisor.child(name)
    assert isinstance(child, Worker)
    child.tell_nowait("quit")
    await wait_all_tasks_blocked()


async def test_a_crashed_child_restarts_while_its_siblings_keep_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tree = Tree()
    supervisor = Supervisor(
        "sup", [tree.spec("a"), tree.spec("b"), tree.spec("c")], on_restart=tree.on_restart
    )
    async with supervising(supervisor):
        a, b = supervisor.child("a"), supervisor.child("b")
        await crash(supervisor, "b")
        assert supervisor.child("a") is a
        assert isinstance(a, Worker) and await a.ask("ping", timeout=5) is a
        new_b = supervisor.child("b")
        assert new_b is tree.built["b"][1] and new_b is not b
        assert await new_b.ask("ping", timeout=5) is new_b
        assert (supervisor.restarts, supervisor.restarts_of("b")) == (1, 1)
        assert supervisor.restarts_of("a") == 0
        assert [(s, c, type(e)) for s, c, e in tree.restarts] == [("sup", "b", Boom)]
    crashes = [r for r in caplog.records if "crashed" in r.getMessage()]
    restarts = [r for r in caplog.records if "restarting" in r.getMessage()]
    assert len(crashes) == 1 and crashes[0].levelno == logging.ERROR
    assert crashes[0].exc_info is not None and crashes[0].exc_info[0] is Boom
    assert len(restarts) == 1 and restarts[0].name == "hubbub.engine"


async def test_too_many_restarts_stop_everything_and_raise_out_of_run() -> None:
    tree = Tree()
    supervisor = Supervisor("sup", [tree.spec("a"), tree.spec("b")], max_restarts=2)
    errors: list[BaseException] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(run_catching, supervisor, errors)
        await crash(supervisor, "a")
        await crash(supervisor, "a")
        await crash(supervisor, "a")  # the third restart within 5s is one too many
    assert len(errors) == 1 and isinstance(errors[0], SupervisorGaveUp)
    assert isinstance(errors[0].__cause__, Boom)
    assert supervisor.state == "failed"
    assert all(worker.state in ("stopped", "crashed") for w in tree.built.values() for worker in w)
    with pytest.raises(ActorStopped):
        await supervisor.start_child(tree.spec("late"))


async def test_restarts_spread_out_in_time_do_not_give_up(mock_clock: MockClock) -> None:
    tree = Tree()
    supervisor = Supervisor("sup", [tree.spec("a")], max_restarts=1, within_seconds=5)
    async with supervising(supervisor):
        for _ in range(3):
            await crash(supervisor, "a")
            mock_clock.jump(6)
        assert supervisor.state == "running"
        assert supervisor.restarts_of("a") == 3


async def test_a_supervisor_that_gives_up_is_restarted_by_its_parent() -> None:
    tree = Tree()
    inner = Supervisor("inner", [tree.spec("w")], max_restarts=0)
    # A supervisor may run again, so the factory may hand back the same instance.
    outer = Supervisor("outer", [ChildSpec("inner", lambda: inner)], on_restart=tree.on_restart)
    async with supervising(outer):
        await crash(inner, "w")
        assert [(s, c) for s, c, _ in tree.restarts] == [("outer", "inner")]
        assert isinstance(tree.restarts[0][2], SupervisorGaveUp)
        assert outer.restarts_of("inner") == 1
        assert inner.state == "running"
        worker = inner.child("w")
        assert worker is tree.built["w"][1]
        assert isinstance(worker, Worker) and await worker.ask("ping", timeout=5) is worker


async def test_a_failing_restart_counts_toward_the_intensity() -> None:
    built: list[Worker] = []

    def build() -> Worker:
        if built:
            raise OSError("cannot start again")
        built.append(Worker("a", []))
        return built[-1]

    supervisor = Supervisor("sup", [ChildSpec("a", build)], max_restarts=3)
    errors: list[BaseException] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(run_catching, supervisor, errors)
        await crash(supervisor, "a")
    assert len(errors) == 1 and isinstance(errors[0], SupervisorGaveUp)
    assert isinstance(errors[0].__cause__, OSError)
    # Three restarts that fail to start; a fourth within 5s would be one too many.
    assert supervisor.restarts == 3


async def test_a_static_child_that_cannot_start_fails_the_supervisor_start() -> None:
    tree = Tree()

    def broken() -> Worker:
        raise OSError("no such resource")

    supervisor = Supervisor("sup", [tree.spec("a"), ChildSpec("b", broken), tree.spec("c")])
    async with trio.open_nursery() as nursery:
        with pytest.raises(OSError, match="no such resource"):
            await nursery.start(supervisor.run)
    assert tree.log == ["start:a", "stop:a"]


async def test_a_temporary_child_is_never_restarted() -> None:
    tree = Tree()
    supervisor = Supervisor("sup", [tree.spec("t", Restart.TEMPORARY)], on_restart=tree.on_restart)
    async with supervising(supervisor):
        await crash(supervisor, "t")
        assert supervisor.child("t") is None
        assert len(tree.built["t"]) == 1 and tree.restarts == []
        assert supervisor.snapshot()["children"][0]["state"] == "failed"


async def test_a_transient_child_restarts_after_a_crash_not_after_a_normal_return() -> None:
    tree = Tree()
    supervisor = Supervisor("sup", [tree.spec("t", Restart.TRANSIENT)])
    async with supervising(supervisor):
        await crash(supervisor, "t")
        assert supervisor.child("t") is tree.built["t"][1]
        await quit(supervisor, "t")
        assert supervisor.child("t") is None
        assert len(tree.built["t"]) == 2
        assert supervisor.snapshot()["children"][0]["state"] == "stopped"


async def test_a_permanent_child_restarts_even_after_a_normal_return() -> None:
    tree = Tree()
    supervisor = Supervisor("sup", [tree.spec("p")])
    async with supervising(supervisor):
        await quit(supervisor, "p")
        assert supervisor.child("p") is tree.built["p"][1]
        assert supervisor.restarts_of("p") == 1


async def test_one_for_all_restarts_every_child_in_order() -> None:
    tree = Tree()
    specs = [tree.spec("a"), tree.spec("b"), tree.spec("c")]
    supervisor = Supervisor("sup", specs, strategy=Strategy.ONE_FOR_ALL)
    async with supervising(supervisor):
        tree.log.clear()
        await crash(supervisor, "b")
        # b is already down; the others stop in reverse start order, all start in order.
        assert tree.log == ["stop:b", "stop:c", "stop:a", "start:a", "start:b", "start:c"]
        for name in "abc":
            assert supervisor.child(name) is tree.built[name][1]
            assert supervisor.restarts_of(name) == 1


async def test_rest_for_one_restarts_the_crashed_child_and_those_after_it() -> None:
    tree = Tree()
    specs = [tree.spec("a"), tree.spec("b"), tree.spec("c")]
    supervisor = Supervisor("sup", specs, strategy=Strategy.REST_FOR_ONE)
    async with supervising(supervisor):
        tree.log.clear()
        await crash(supervisor, "b")
        assert tree.log == ["stop:b", "stop:c", "start:b", "start:c"]
        assert supervisor.child("a") is tree.built["a"][0]
        assert supervisor.child("b") is tree.built["b"][1]
        assert supervisor.child("c") is tree.built["c"][1]


async def test_snapshot_shows_restarts_states_and_mailbox_depths() -> None:
    tree = Tree()
    inner = Supervisor("inner", [tree.spec("x")])
    outer = Supervisor("outer", [tree.spec("a"), ChildSpec("inner", lambda: inner)])
    async with supervising(outer):
        await crash(outer, "a")
        a = outer.child("a")
        assert isinstance(a, Worker)
        a.tell_nowait("block")
        await wait_all_tasks_blocked()
        a.tell_nowait("ping")
        a.tell_nowait("ping")
        assert outer.snapshot() == {
            "name": "outer",
            "state": "running",
            "restarts": 1,
            "mailbox_depth": 0,
            "children": [
                {
                    "name": "a",
                    "state": "running",
                    "restarts": 1,
                    "mailbox_depth": 2,
                    "children": [],
                },
                {
                    "name": "inner",
                    "state": "running",
                    "restarts": 0,
                    "mailbox_depth": 0,
                    "children": [
                        {
                            "name": "x",
                            "state": "running",
                            "restarts": 0,
                            "mailbox_depth": 0,
                            "children": [],
                        }
                    ],
                },
            ],
        }
        a.gate.set()


async def test_dynamic_children_start_stop_and_leave_the_tree() -> None:
    tree = Tree()
    supervisor = Supervisor("sup")
    removed: list[str] = []
    supervisor.add_removal_listener(removed.append)
    async with supervising(supervisor):
        d = await supervisor.start_child(tree.spec("d"))
        assert supervisor.child("d") is d and "d" in supervisor
        assert isinstance(d, Worker) and await d.ask("ping", timeout=5) is d
        with pytest.raises(ValueError, match="already has a child named 'd'"):
            await supervisor.start_child(tree.spec("d"))
        assert await supervisor.ensure_child(tree.spec("d")) is d

        await supervisor.terminate_child("d")
        assert "d" not in supervisor and d.state == "stopped"
        await supervisor.terminate_child("d")  # already gone: nothing to do

        await supervisor.start_child(tree.spec("t", Restart.TRANSIENT))
        await quit(supervisor, "t")
        await supervisor.start_child(tree.spec("tmp", Restart.TEMPORARY))
        await crash(supervisor, "tmp")
        assert removed == ["d", "t", "tmp"]

        def broken() -> Worker:
            raise OSError("cannot build")

        with pytest.raises(OSError):
            await supervisor.start_child(ChildSpec("broken", broken))
        assert "broken" not in supervisor
        assert supervisor.snapshot()["children"] == []


async def test_ensure_child_never_answers_with_a_child_that_has_just_ended() -> None:
    tree = Tree()
    may_start = trio.Event()

    class SlowStarter(Worker):
        async def run(
            self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
        ) -> None:
            await may_start.wait()
            await super().run(task_status=task_status)

    supervisor = Supervisor("sup", [tree.spec("a")])
    ensured: list[object] = []

    async def ensure_a() -> None:
        ensured.append(await supervisor.ensure_child(tree.spec("a")))

    async with supervising(supervisor), trio.open_nursery() as nursery:
        slow = ChildSpec("slow", lambda: SlowStarter("slow", tree.log))
        nursery.start_soon(supervisor.start_child, slow)
        await wait_all_tasks_blocked()  # the supervisor is busy starting "slow"
        nursery.start_soon(ensure_a)
        await wait_all_tasks_blocked()  # the request waits behind that start...
        await crash(supervisor, "a")  # ...and "a" ends before the request is read
        may_start.set()
    assert ensured == [tree.built["a"][1]]


async def test_cancellation_is_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    tree = Tree()
    supervisor = Supervisor("sup", [tree.spec("a")], on_restart=tree.on_restart)
    async with supervising(supervisor):
        await supervisor.start_child(tree.spec("b"))
    assert supervisor.state == "stopped"
    assert tree.restarts == []
    assert sorted(tree.log) == ["start:a", "start:b", "stop:a", "stop:b"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with pytest.raises(ActorStopped):
        await supervisor.start_child(tree.spec("c"))
