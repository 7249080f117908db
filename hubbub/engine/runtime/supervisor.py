"""Supervisors: OTP restart semantics on Trio.

A supervisor runs its children in its own nursery, each wrapped so that a crash is
reported to the supervisor instead of cancelling the siblings (which a bare nursery
would do). One task, the supervisor's own, decides every change to the tree, in the
order events arrive: child exits and the requests of ``start_child``,
``ensure_child`` and ``terminate_child``. So the tree never changes under a decision.

Restart types: PERMANENT children are always restarted, TRANSIENT ones only after a
crash, TEMPORARY ones never. Strategies choose what restarts with a crashed child:
itself (ONE_FOR_ONE), every child (ONE_FOR_ALL), or itself and the children started
after it (REST_FOR_ONE). Siblings are stopped in reverse start order and started
again in start order. More than ``max_restarts`` restarts within ``within_seconds``
and the supervisor stops all its children and raises ``SupervisorGaveUp``, which its
own parent sees as that child's crash. Cancellation is never a crash.

Restarting calls the spec's factory again. An ``Actor`` runs once, so its factory
must build a fresh one; a ``Supervisor`` may be run again, so a factory may return
the same supervisor instance, which keeps references to it (a ``Registry``'s) valid.
Each run starts from the static specs; dynamic children do not carry over.

A child must not call ``start_child``, ``ensure_child`` or ``terminate_child`` on its
own supervisor before it has called ``task_status.started()``: the supervisor is
waiting for it to start and would wait forever.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, TypeAlias

import attrs
import trio

from hubbub.engine.runtime.actor import ActorError, ActorStopped, Envelope

__all__ = ["Child", "ChildSpec", "Restart", "Strategy", "Supervisor", "SupervisorGaveUp"]

logger = logging.getLogger("hubbub.engine")

ChildState: TypeAlias = Literal["starting", "running", "restarting", "stopped", "failed"]
SupervisorState: TypeAlias = Literal["starting", "running", "stopped", "failed"]
OnRestart: TypeAlias = Callable[[str, str, BaseException | None], None]


class Restart(enum.Enum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class Strategy(enum.Enum):
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


class Child(Protocol):
    """What a supervisor runs: an ``Actor``, a ``Supervisor``, or anything alike."""

    @property
    def name(self) -> str: ...

    async def run(self, *, task_status: trio.TaskStatus[Any] = ...) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...


@attrs.frozen
class ChildSpec:
    """How to (re)start a child: ``factory`` builds a fresh instance every time."""

    name: str
    factory: Callable[[], Child]
    restart: Restart = Restart.PERMANENT


class SupervisorGaveUp(ActorError):
    """Children crashed too often; the supervisor stopped them all. ``__cause__`` is
    the last crash."""


@attrs.define(eq=False)
class _Run:
    """One run of one child instance."""

    child: Child
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    done: trio.Event = attrs.Factory(trio.Event)
    terminating: bool = False


@attrs.define(eq=False)
class _Slot:
    """A child's place in the tree; it outlives the child's runs."""

    spec: ChildSpec
    dynamic: bool
    state: ChildState = "starting"
    restarts: int = 0
    run: _Run | None = None


@attrs.frozen
class _Exit:
    slot: _Slot
    run: _Run
    crash: Exception | None


@attrs.frozen
class _StartChild:
    spec: ChildSpec
    existing_ok: bool

    @property
    def name(self) -> str:
        return self.spec.name


@attrs.frozen
class _TerminateChild:
    name: str


@attrs.define
class _StartWatch:
    """Wraps a task status to tell whether the child got as far as ``started()``."""

    status: trio.TaskStatus[Any]
    called: bool = False

    def started(self, value: object = None) -> None:
        self.called = True
        self.status.started(value)


class Supervisor:
    """Runs children and restarts them by their restart type and the strategy."""

    def __init__(
        self,
        name: str,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        within_seconds: float = 5.0,
        on_restart: OnRestart | None = None,
    ) -> None:
        names = [spec.name for spec in children]
        if len(set(names)) != len(names):
            raise ValueError(f"supervisor {name!r}: child names must be unique, got {names}")
        self.name = name
        self.strategy = strategy
        self.max_restarts = max_restarts
        self.within_seconds = within_seconds
        self._specs = tuple(children)
        self._on_restart = on_restart
        self._state: SupervisorState = "starting"
        self._slots: dict[str, _Slot] = {}
        self._restarts = 0
        self._restart_times: deque[float] = deque()
        self._removal_listeners: list[Callable[[str], None]] = []
        self._nursery: trio.Nursery | None = None
        self._open_control()

    def _open_control(self) -> None:
        # Unbounded, yet bounded in practice: it holds at most one exit per child and
        # one request per caller waiting for its answer. A bound could only deadlock.
        self._control_send, self._control_receive = trio.open_memory_channel[_Exit | Envelope](
            math.inf
        )

    def __repr__(self) -> str:
        return f"<Supervisor {self.name!r} {self._state}, {len(self._slots)} children>"

    # -- running -------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the static children in order, then supervise until cancelled.

        Signals ``started`` once every static child has. Raises ``SupervisorGaveUp``
        when the restart intensity is exceeded, or a static child's own error if it
        fails its first start; either way every child has been stopped first."""
        if self._nursery is not None:
            raise RuntimeError(f"supervisor {self.name!r} is already running")
        if self._state != "starting":
            self._open_control()
        self._state = "starting"
        failure: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                failure = await self._supervise(task_status)
                nursery.cancel_scope.cancel()
        finally:
            self._shut_down(failed=failure is not None)
        if failure is not None:
            raise failure

    async def _supervise(self, task_status: trio.TaskStatus[Any]) -> BaseException:
        """Returns why the supervisor must stop, with all children stopped."""
        self._restart_times.clear()
        for spec in self._specs:
            slot = self._slots[spec.name] = _Slot(spec, dynamic=False)
            try:
                await self._launch(slot)
            except Exception as error:
                logger.error(
                    "supervisor %r: child %r failed to start", self.name, spec.name, exc_info=error
                )
                await self._terminate_all()
                return error
        self._state = "running"
        task_status.started()
        while True:
            item = await self._control_receive.receive()
            if isinstance(item, _Exit):
                failure = await self._on_exit(item)
                if failure is not None:
                    await self._terminate_all()
                    return failure
            else:
                await self._on_request(item)

    def _shut_down(self, *, failed: bool) -> None:
        self._nursery = None
        self._state = "failed" if failed else "stopped"
        self._control_send.close()
        stopped = self._stopped_error()
        while True:
            try:
                item = self._control_receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            if isinstance(item, Envelope):
                item.fail(stopped)
        self._control_receive.close()
        for slot in list(self._slots.values()):
            slot.run = None
            self._remove(slot)

    async def _launch(self, slot: _Slot) -> Child:
        """Build a fresh child from the spec and wait until it has started."""
        assert self._nursery is not None
        run = _Run(slot.spec.factory())
        slot.run = run
        try:
            await self._nursery.start(self._child_task, slot, run)
        except BaseException:
            slot.run = None
            raise
        slot.state = "running"
        return run.child

    async def _child_task(
        self, slot: _Slot, run: _Run, *, task_status: trio.TaskStatus[Any]
    ) -> None:
        """Run one child; report how it ended instead of letting a crash spread."""
        watch = _StartWatch(task_status)
        crash: Exception | None = None
        try:
            with run.scope:
                await run.child.run(task_status=watch)
        except Exception as error:
            if not watch.called:
                raise  # nursery.start() raises it to whoever was starting the child
            crash = error
        finally:
            run.done.set()
        if not watch.called or (run.terminating and crash is None):
            return  # a start that failed (nursery.start() says so) or a stop we asked for
        # A closed channel means the supervisor is shutting down: nothing left to decide.
        with contextlib.suppress(trio.ClosedResourceError):
            self._control_send.send_nowait(_Exit(slot, run, crash))

    # -- deciding --------------------------------------------------------------

    async def _on_exit(self, exit: _Exit) -> SupervisorGaveUp | None:
        slot, crash = exit.slot, exit.crash
        name = slot.spec.name
        if crash is not None:
            logger.error("supervisor %r: child %r crashed", self.name, name, exc_info=crash)
        if slot.run is not exit.run:
            return None  # already stopped or replaced by a decision taken since
        slot.run = None
        restart = slot.spec.restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and crash is None):
            slot.state = "stopped" if crash is None else "failed"
            if slot.dynamic:
                self._remove(slot)
            return None
        if self._restart_limit_reached():
            return self._give_up(name, crash)
        affected = self._affected_by(slot)
        for other in reversed(affected):
            if other is not slot:
                other.state = "restarting"
                await self._terminate(other)
        for each in affected:
            if each is not slot and each.spec.restart is Restart.TEMPORARY:
                self._remove(each)
                continue
            failure = await self._restart(each, crash)
            if failure is not None:
                return failure
        return None

    def _affected_by(self, slot: _Slot) -> list[_Slot]:
        """The slots to restart with ``slot``, in start order: itself, and per the
        strategy its running siblings (a child that ended for good stays ended)."""
        if self.strategy is Strategy.ONE_FOR_ONE:
            return [slot]
        slots = list(self._slots.values())
        if self.strategy is Strategy.REST_FOR_ONE:
            slots = slots[slots.index(slot) :]
        return [each for each in slots if each is slot or each.run is not None]

    async def _restart(self, slot: _Slot, cause: BaseException | None) -> SupervisorGaveUp | None:
        """Start ``slot`` again; a failed start counts as one more restart."""
        name = slot.spec.name
        while True:
            slot.state = "restarting"
            slot.restarts += 1
            self._restarts += 1
            logger.warning(
                "supervisor %r: restarting child %r (restart %d)", self.name, name, slot.restarts
            )
            if self._on_restart is not None:
                self._on_restart(self.name, name, cause)
            try:
                await self._launch(slot)
            except Exception as error:
                logger.error(
                    "supervisor %r: child %r failed to restart", self.name, name, exc_info=error
                )
                if self._restart_limit_reached():
                    return self._give_up(name, error)
                cause = error
            else:
                return None

    def _restart_limit_reached(self) -> bool:
        """Count one restart now; true if that makes too many within the window."""
        now = trio.current_time()
        times = self._restart_times
        times.append(now)
        while times and now - times[0] >= self.within_seconds:
            times.popleft()
        return len(times) > self.max_restarts

    def _give_up(self, name: str, cause: BaseException | None) -> SupervisorGaveUp:
        logger.error(
            "supervisor %r: more than %d restarts within %ss, the last for %r; giving up",
            self.name,
            self.max_restarts,
            self.within_seconds,
            name,
        )
        error = SupervisorGaveUp(
            f"supervisor {self.name!r} gave up after more than {self.max_restarts} restarts "
            f"within {self.within_seconds}s (last: child {name!r}); fix the crash in the "
            "cause below, or loosen max_restarts/within_seconds if it is expected"
        )
        error.__cause__ = cause
        return error

    async def _terminate(self, slot: _Slot) -> None:
        """Cancel the slot's current run and wait until it has ended."""
        run = slot.run
        if run is None:
            return
        slot.run = None
        run.terminating = True
        run.scope.cancel()
        await run.done.wait()

    async def _terminate_all(self) -> None:
        for slot in reversed(list(self._slots.values())):
            await self._terminate(slot)
            slot.state = "stopped"

    def _remove(self, slot: _Slot) -> None:
        name = slot.spec.name
        if self._slots.get(name) is slot:
            del self._slots[name]
            for listener in self._removal_listeners:
                listener(name)

    # -- requests from other tasks ---------------------------------------------

    async def _on_request(self, request: Envelope) -> None:
        command = request.message
        assert isinstance(command, _StartChild | _TerminateChild)
        slot = self._slots.get(command.name)
        if slot is not None and slot.run is not None and slot.run.done.is_set():
            # That child has ended and its exit is queued ahead of this request:
            # answer after the exit is handled, never with a dead instance.
            self._control_send.send_nowait(request)
            return
        try:
            if isinstance(command, _StartChild):
                request.reply(await self._start(command.spec, existing_ok=command.existing_ok))
            else:
                await self._terminate_child(command.name)
                request.reply(None)
        except Exception as error:
            request.fail(error)
        finally:
            request.fail(self._stopped_error())  # no-op once answered: only on cancellation

    async def _start(self, spec: ChildSpec, *, existing_ok: bool) -> Child:
        slot = self._slots.get(spec.name)
        if slot is not None:
            if not existing_ok:
                raise ValueError(
                    f"supervisor {self.name!r} already has a child named {spec.name!r}; "
                    "pick a unique name, or use ensure_child() to reuse it"
                )
            if slot.run is not None:
                return slot.run.child
        else:
            slot = self._slots[spec.name] = _Slot(spec, dynamic=True)
        try:
            return await self._launch(slot)
        except BaseException:
            slot.state = "failed"
            if slot.dynamic:
                self._remove(slot)
            raise

    async def _terminate_child(self, name: str) -> None:
        slot = self._slots.get(name)
        if slot is not None:
            await self._terminate(slot)
            slot.state = "stopped"
            self._remove(slot)

    async def _call(self, command: _StartChild | _TerminateChild) -> Any:
        request = Envelope(command, trio.Event())
        try:
            self._control_send.send_nowait(request)
        except trio.ClosedResourceError:
            raise self._stopped_error() from None
        return await request._outcome()

    def _stopped_error(self) -> ActorStopped:
        return ActorStopped(
            f"supervisor {self.name!r} is {self._state}; its parent restarts it, "
            "or the node is shutting down"
        )

    # -- public API for other tasks --------------------------------------------

    async def start_child(self, spec: ChildSpec) -> Child:
        """Start a new child under this supervisor; return it once it has started.

        Raises ``ValueError`` if the name is taken, whatever the factory or the
        child's startup raised (the child is then not in the tree), and
        ``ActorStopped`` if the supervisor has stopped. Before the first ``run``,
        the request waits for it."""
        return await self._call(_StartChild(spec, existing_ok=False))

    async def ensure_child(self, spec: ChildSpec) -> Child:
        """Return the live child named ``spec.name``, starting it from ``spec`` if
        there is none. Concurrent calls for one name start it once."""
        return await self._call(_StartChild(spec, existing_ok=True))

    async def terminate_child(self, name: str) -> None:
        """Stop the named child (cancelling it) and remove it from the tree.
        A name not in the tree is already terminated: nothing happens."""
        await self._call(_TerminateChild(name))

    def child(self, name: str) -> Child | None:
        """The live instance of the named child, or None (absent, ended, restarting)."""
        slot = self._slots.get(name)
        if slot is None or slot.state != "running":
            return None
        run = slot.run
        if run is None or run.done.is_set():
            return None
        return run.child

    def __contains__(self, name: object) -> bool:
        """Whether the tree has a place for ``name`` (its child may be restarting)."""
        return name in self._slots

    def add_removal_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(name)`` whenever a child leaves the tree."""
        self._removal_listeners.append(listener)

    @property
    def state(self) -> SupervisorState:
        return self._state

    @property
    def restarts(self) -> int:
        """Restarts performed by this supervisor, all children together."""
        return self._restarts

    def restarts_of(self, name: str) -> int:
        """Restarts of the named child (0 if it is not in the tree)."""
        slot = self._slots.get(name)
        return 0 if slot is None else slot.restarts

    def snapshot(self) -> dict[str, Any]:
        """The tree below this supervisor, as ``/health/supervisor`` shows it.

        Each child entry is the child's own snapshot with ``restarts`` and
        ``state`` as this supervisor sees them."""
        return {
            "name": self.name,
            "state": self._state,
            "restarts": self._restarts,
            "mailbox_depth": 0,
            "children": [self._child_snapshot(slot) for slot in self._slots.values()],
        }

    @staticmethod
    def _child_snapshot(slot: _Slot) -> dict[str, Any]:
        if slot.run is None:
            entry: dict[str, Any] = {"name": slot.spec.name, "mailbox_depth": 0, "children": []}
        else:
            entry = slot.run.child.snapshot()
        entry["state"] = slot.state
        entry["restarts"] = slot.restarts
        return entry
