"""The node's socket flusher: one task that writes every session's queued frames.

Actors push frames to sessions without waiting (``Session.push``); a session with
something new to write asks to be flushed. The flusher runs once per pass of the Trio
scheduler, after the tasks that pushed, so everything a session was given in that pass
(the several messages of one commit batch, say) goes out in one system call, and no
task per session wakes up to do it. A socket that will not take everything gets a
writer task of its own until it drains (``Session.write_due``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from hubbub.ws.frames import FrameCache

log = logging.getLogger("hubbub.ws")


class Flushable(Protocol):
    def write_due(self) -> None:
        """Write what is queued without waiting; never raises."""


class SocketFlusher:
    """Owned by the node, run as a supervised task. A restarted run carries on with
    the sessions already due."""

    def __init__(self) -> None:
        self._due: list[Flushable] = []
        self._task: trio.lowlevel.Task | None = None
        #: Where writers of full sockets run (the flusher's own nursery, so a session
        #: needs no nursery of its own).
        self._writers: trio.Nursery | None = None
        self._parked = False
        #: Frames of the payload pushed last, shared by the sessions it goes to.
        self.frames = FrameCache()

    def schedule(self, session: Flushable) -> bool:
        """Have ``session`` written on the next pass. False if the flusher is not
        running: what the session queued then waits for its next push after the
        flusher's restart, or for its own close, which writes what is left."""
        if self._task is None:
            return False
        self._due.append(session)
        if self._parked:
            self._parked = False
            trio.lowlevel.reschedule(self._task)
        return True

    def start_writer(self, write: Callable[[], Awaitable[None]]) -> bool:
        """Run ``write`` (a session's wait for its full socket) as a task of its own.
        False if the flusher is not running."""
        if self._writers is None:
            return False
        self._writers.start_soon(write)
        return True

    def _abort(self, _: Any) -> trio.lowlevel.Abort:
        self._parked = False
        return trio.lowlevel.Abort.SUCCEEDED

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Flush due sessions until cancelled; whatever is due when it stops gets one
        last write without waiting."""
        async with trio.open_nursery() as writers:
            self._writers = writers
            try:
                await self._flush_forever(task_status)
            finally:
                self._writers = None

    async def _flush_forever(self, task_status: trio.TaskStatus[None]) -> None:
        self._task = trio.lowlevel.current_task()
        task_status.started()
        try:
            while True:
                if self._due:
                    # Let the tasks that can run now push first: their frames join
                    # the same writes.
                    await trio.lowlevel.checkpoint()
                else:
                    self._parked = True
                    await trio.lowlevel.wait_task_rescheduled(self._abort)
                due, self._due = self._due, []
                for session in due:
                    session.write_due()
        finally:
            self._task = None
            self._parked = False
            due, self._due = self._due, []
            for session in due:
                session.write_due()
