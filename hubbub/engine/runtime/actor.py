"""Actors: a Trio task that owns its state and reads a bounded mailbox.

An ``Actor`` is run once, by a supervisor (or any nursery), through ``run``. Its state
belongs to that task; everyone else sends messages. (A subclass may offer a synchronous
method that other tasks call, as the UserActor's ``on_event`` does for delivery: safe in
Trio only because it never awaits, and each such method says so.)

- ``tell_nowait`` queues a message or refuses at once (``MailboxFull``); it never
  blocks and costs one channel send, because a bare message is queued as is.
- ``tell`` waits for room (back-pressure), up to a timeout.
- ``ask`` queues the message with a reply slot and waits for ``handle``'s result.

Restarting means building a fresh instance: a supervisor calls its child factory
on every (re)start, so a restarted actor has a fresh mailbox and fresh state. A
reference to an old instance goes stale: sending to it raises ``ActorStopped``.
Callers that outlive restarts therefore look the actor up on each use, through
``Supervisor.child`` or a ``Registry`` (which also retries once on ``ActorStopped``).

When ``run`` ends, for any reason, the mailbox closes: later sends raise
``ActorStopped``, asks still queued fail with ``ActorStopped`` at once rather than
timing out, and tells still queued are dropped, as a dead process's mailbox is in
OTP. The only normal end of the default loop is passivation, which happens with an
empty mailbox, so it never drops anything.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeAlias

import attrs
import trio

__all__ = [
    "Actor",
    "ActorError",
    "ActorState",
    "ActorStopped",
    "AskTimeout",
    "Envelope",
    "Mailbox",
    "MailboxFull",
]

ActorState: TypeAlias = Literal["starting", "running", "stopped", "crashed"]

_RunMethod = Callable[..., Awaitable[None]]

# What the idle wait yields when it times out with nothing received.
_IDLE = object()


def _closed_channel() -> tuple[trio.MemorySendChannel[object], trio.MemoryReceiveChannel[object]]:
    send, receive = trio.open_memory_channel[object](0)
    send.close()
    receive.close()
    return send, receive


#: What an instance that outlives its run points to instead of its own mailbox.
_CLOSED_SEND, _CLOSED_RECEIVE = _closed_channel()


class ActorError(Exception):
    """Base class of the errors of the actor runtime."""


class MailboxFull(ActorError):
    """The actor's mailbox had no room: the receiver is not keeping up."""


class AskTimeout(ActorError, TimeoutError):
    """No reply came within the ask's timeout. A late reply is dropped."""


class ActorStopped(ActorError):
    """The actor is not running any more: look up the live instance and send again."""


class Mailbox:
    """A bounded mailbox that can outlive the actor reading it.

    Hand the same ``Mailbox`` to every instance a child factory builds, and what was
    queued when one instance crashed is read by the next, not dropped. Its senders
    hold the ``Mailbox``, never an instance, so they need no lookup across restarts."""

    def __init__(self, size: int) -> None:
        self.send, self.receive = trio.open_memory_channel[object](size)

    def tell_nowait(self, message: object) -> None:
        """Queue ``message``; ``MailboxFull`` if there is no room."""
        try:
            self.send.send_nowait(message)
        except trio.WouldBlock:
            raise MailboxFull("mailbox is full; back off or wait with tell()") from None

    async def tell(self, message: object, *, timeout: float) -> None:
        """Queue ``message``, waiting up to ``timeout`` for room (``MailboxFull`` past it)."""
        with trio.move_on_after(timeout):
            await self.send.send(message)
            return
        raise MailboxFull(f"mailbox stayed full for {timeout}s; its reader is overloaded")

    @property
    def depth(self) -> int:
        return self.receive.statistics().current_buffer_used


@attrs.define(eq=False)
class Envelope:
    """One message taken from a mailbox, with the asker's reply slot if it was an ask.

    Custom ``run`` loops get envelopes from ``next_envelope`` and ``drain_nowait``
    and must answer every one that ``wants_reply``, with ``reply`` or ``fail``.
    Telling an ask's envelope to another actor forwards the request: whoever handles
    it there answers the original asker.
    """

    message: object
    _done: trio.Event | None = None
    _value: object = attrs.field(default=None, init=False, repr=False)
    _error: BaseException | None = attrs.field(default=None, init=False, repr=False)

    @property
    def wants_reply(self) -> bool:
        """True for an ask that has not been answered yet."""
        return self._done is not None and not self._done.is_set()

    def reply(self, value: object) -> None:
        """Answer the asker with ``value``.

        Only the first answer counts; answering a tell, or an asker who timed out
        already, is a harmless no-op."""
        done = self._done
        if done is not None and not done.is_set():
            self._value = value
            done.set()

    def fail(self, error: BaseException) -> None:
        """Make the asker's ``ask`` raise ``error``. Same rules as ``reply``."""
        done = self._done
        if done is not None and not done.is_set():
            self._error = error
            done.set()

    async def _outcome(self) -> object:
        """Wait for the answer: return the replied value or raise the failure."""
        assert self._done is not None, "only an ask has an outcome"
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


@attrs.define
class _MarkRunning:
    """Wraps a task status so that ``started()`` also marks the actor running."""

    actor: Actor
    status: trio.TaskStatus[Any]

    def started(self, value: object = None) -> None:
        self.actor._state = "running"
        self.status.started(value)


def _lifecycle(run: _RunMethod) -> _RunMethod:
    """Wrap a ``run`` method with what every actor run needs, however it loops.

    The wrapped run refuses to run twice, marks the actor running when it calls
    ``task_status.started()``, and closes the mailbox when it ends (see ``_close``).
    An override that awaits ``super().run(...)`` is wrapped too; the inner call then
    passes straight through.
    """

    @functools.wraps(run)
    async def lifecycle(
        self: Actor, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
    ) -> None:
        if self._in_run:
            await run(self, task_status=task_status)
            return
        if self._state != "starting":
            raise RuntimeError(
                f"actor {self.name!r} has already run; an actor runs once, so build a "
                "fresh instance (supervisors call the child factory on every restart)"
            )
        self._in_run = True
        try:
            await run(self, task_status=_MarkRunning(self, task_status))
        except trio.Cancelled:
            self._state = "stopped"
            raise
        except BaseException:
            self._state = "crashed"
            raise
        else:
            self._state = "stopped"
        finally:
            self._in_run = False
            self._close()

    lifecycle.__actor_lifecycle__ = True  # type: ignore[attr-defined]
    return lifecycle


class Actor:
    """A Trio task that owns its state and handles its mailbox one message at a time.

    Subclasses implement ``handle``. Those that need another loop (batching, say)
    override ``run`` instead, call ``task_status.started()``, and read the mailbox
    with ``next_envelope`` and ``drain_nowait``; the runtime still marks the actor
    running and closes its mailbox when that ``run`` ends.

    With ``idle_timeout`` set, the default loop passivates: after that many seconds
    with an empty mailbox, if ``can_passivate()`` agrees, it closes the mailbox and
    returns normally. Closing happens with no checkpoint after the mailbox was seen
    empty, so a message is either handled or refused with ``ActorStopped``, never lost.
    """

    def __init__(
        self,
        name: str,
        *,
        mailbox_size: int = 1024,
        idle_timeout: float | None = None,
        mailbox: Mailbox | None = None,
    ) -> None:
        if mailbox_size < 1:
            raise ValueError(f"mailbox_size must be at least 1, got {mailbox_size}")
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive or None, got {idle_timeout}")
        self.name = name
        self.idle_timeout = idle_timeout
        #: A mailbox handed in outlives this instance: its restarts read on from it.
        self._own_mailbox = mailbox is None
        if mailbox is None:
            mailbox = Mailbox(mailbox_size)
        self._send, self._receive = mailbox.send, mailbox.receive
        self._state: ActorState = "starting"
        self._in_run = False
        self._drop_mailbox = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("run")
        if run is not None and not getattr(run, "__actor_lifecycle__", False):
            cls.run = _lifecycle(run)  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self._state}>"

    # -- what subclasses provide ---------------------------------------------

    async def handle(self, message: object) -> object:
        """Handle one message; the return value is the reply to an ``ask``.

        An exception raised here crashes the actor (its supervisor decides what
        next); for an ``ask`` the asker gets the same exception first. Return an
        error value instead for outcomes that are not bugs."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle() or run()")

    def can_passivate(self) -> bool:
        """Whether an idle actor may stop now. Override to stay alive while, for
        instance, a client is attached; the idle wait then starts over."""
        return True

    # -- the task ------------------------------------------------------------

    @_lifecycle
    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Handle messages until cancelled, crashed, or passivated (a normal return)."""
        task_status.started()
        if self.idle_timeout is None:
            await self._serve()
        else:
            await self._serve_until_idle(self.idle_timeout)

    async def _serve(self) -> None:
        receive = self._receive.receive
        handle = self.handle
        while True:
            item = await receive()
            if type(item) is Envelope:
                await self._answer(item)
            else:
                await handle(item)

    async def _serve_until_idle(self, idle_timeout: float) -> None:
        receive = self._receive
        handle = self.handle
        while True:
            # One checkpoint per message, taken before the message leaves the mailbox,
            # so a cancellation never strands a message that was taken but not handled.
            await trio.lowlevel.checkpoint()
            try:
                item = receive.receive_nowait()
            except trio.WouldBlock:
                item = _IDLE
            if item is _IDLE:
                # Waited outside the except block: inside it, the WouldBlock and its
                # traceback would stay alive for as long as the actor idles.
                with trio.move_on_after(idle_timeout):
                    item = await receive.receive()
                if item is _IDLE:
                    # No checkpoint from here to the close, so nothing can be queued
                    # after this last look and then lost.
                    try:
                        item = receive.receive_nowait()
                    except trio.WouldBlock:
                        if self.can_passivate():
                            self._send.close()
                            return
                        continue
            if type(item) is Envelope:
                await self._answer(item)
            else:
                await handle(item)

    async def _answer(self, envelope: Envelope) -> None:
        try:
            result = await self.handle(envelope.message)
        except Exception as error:
            envelope.fail(error)
            raise
        envelope.reply(result)

    def _close(self) -> None:
        """Refuse new messages, fail the asks still queued, drop the rest. A shared
        ``Mailbox`` stays open, with what it holds, for the actor's successor."""
        if not self._own_mailbox:
            return
        self._send.close()
        stopped: ActorStopped | None = None
        while True:
            try:
                item = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            if type(item) is Envelope and item.wants_reply:
                stopped = stopped or self._stopped_error()
                item.fail(stopped)
        self._receive.close()
        if self._drop_mailbox:
            self._send, self._receive = _CLOSED_SEND, _CLOSED_RECEIVE

    def _drop_mailbox_after_run(self) -> None:
        """Let go of the own mailbox once the run has closed it, for an instance kept
        after its run (a parked UserActor): sends still raise ``ActorStopped``, and the
        channel's memory is freed. Call it from ``run``, before it ends."""
        self._drop_mailbox = True

    # -- for custom run loops ------------------------------------------------

    async def next_envelope(self) -> Envelope:
        """Wait for the next message. A tell comes wrapped in an envelope that
        wants no reply."""
        item = await self._receive.receive()
        return item if type(item) is Envelope else Envelope(item)

    def drain_nowait(self, limit: int) -> list[Envelope]:
        """Take up to ``limit`` messages already queued, without waiting."""
        batch: list[Envelope] = []
        receive = self._receive
        while len(batch) < limit:
            try:
                item = receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            batch.append(item if type(item) is Envelope else Envelope(item))
        return batch

    # -- sending -------------------------------------------------------------

    def tell_nowait(self, message: object) -> None:
        """Queue ``message`` without waiting.

        Raises ``MailboxFull`` if there is no room (the message is not queued) and
        ``ActorStopped`` if the actor has stopped."""
        try:
            self._send.send_nowait(message)
        except trio.WouldBlock:
            raise MailboxFull(
                f"mailbox of {self.name!r} is full ({self.mailbox_depth} queued); "
                "back off, or use tell() to wait for room"
            ) from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise self._stopped_error() from None

    async def tell(self, message: object, *, timeout: float | None = None) -> None:
        """Queue ``message``, waiting for room if the mailbox is full.

        Raises ``MailboxFull`` if no room came within ``timeout`` seconds (None waits
        as long as it takes) and ``ActorStopped`` if the actor has stopped."""
        with trio.move_on_after(math.inf if timeout is None else timeout):
            try:
                await self._send.send(message)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise self._stopped_error() from None
            return
        raise MailboxFull(
            f"mailbox of {self.name!r} stayed full for {timeout}s; the actor is overloaded"
        )

    async def ask(self, message: object, *, timeout: float) -> object:
        """Send ``message`` and return ``handle``'s reply.

        Waits for mailbox room and for the reply within one ``timeout``; raises
        ``AskTimeout`` past it (a late reply is dropped), ``ActorStopped`` if the
        actor stopped before answering, or whatever ``handle`` raised."""
        request = Envelope(message, trio.Event())
        with trio.move_on_after(timeout):
            try:
                await self._send.send(request)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise self._stopped_error() from None
            return await request._outcome()
        raise AskTimeout(f"{self.name!r} did not answer {type(message).__name__} within {timeout}s")

    # -- introspection -------------------------------------------------------

    @property
    def state(self) -> ActorState:
        return self._state

    @property
    def mailbox_depth(self) -> int:
        """Messages queued and not yet taken."""
        return self._receive.statistics().current_buffer_used

    def snapshot(self) -> dict[str, Any]:
        """This actor as ``/health/supervisor`` shows it."""
        return {
            "name": self.name,
            "state": self._state,
            "restarts": 0,
            "mailbox_depth": self.mailbox_depth,
            "children": [],
        }

    def _stopped_error(self) -> ActorStopped:
        return ActorStopped(
            f"actor {self.name!r} is {self._state}; look up the live instance "
            "(Supervisor.child or the Registry) and send again"
        )
