"""An asyncio event loop on a thread of its own, for asyncpg, called from Trio tasks.

asyncpg needs asyncio. Running its loop inside Trio (trio-asyncio) puts that loop in the
Trio scheduler's round robin: a statement's start, its socket reads and its answer each
wait for a turn behind every other runnable task, which under load is tens of
milliseconds per call (docs/scaling.md). On a thread of its own, the loop starts a
coroutine as soon as it is handed over, and its answer wakes the waiting Trio task
directly (``TrioToken.run_sync_soon``).

The thread is owned: ``open_asyncio_thread`` runs the loop in ``trio.to_thread`` inside a
nursery, and on exit stops the loop and waits until it has closed.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
import trio

T = TypeVar("T")

#: How long coroutines still running at exit get, once cancelled, to finish their clean-up
#: before the loop is closed under them.
SHUTDOWN_GRACE = 5.0

ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


@attrs.define
class _Call:
    """One coroutine handed to the loop: its task (set on the loop's thread) and the
    Trio event its end sets."""

    done: trio.Event = attrs.field(factory=trio.Event)
    task: asyncio.Task[Any] | None = None


class AsyncioThread:
    """Runs coroutines on an asyncio loop that lives on its own thread.

    Build it with ``open_asyncio_thread``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, token: trio.lowlevel.TrioToken) -> None:
        self.loop = loop
        self._token = token

    async def run(self, coroutine: Coroutine[Any, Any, T], *, cancel_wait: float = math.inf) -> T:
        """Run ``coroutine`` on the loop and return (or raise) what it does.

        If the calling Trio task is cancelled, the coroutine is cancelled too (asyncio's
        ``CancelledError`` is raised in it), and this waits until it has finished, up to
        ``cancel_wait`` seconds, before letting Trio's ``Cancelled`` through: the
        coroutine's cleanup (asyncpg cancelling a statement, a connection going back
        to its pool) is over when the caller goes on."""
        call = _Call()
        try:
            self.loop.call_soon_threadsafe(self._start, call, coroutine)
        except RuntimeError:  # the loop is closed: the storage was closed
            coroutine.close()
            raise
        try:
            await call.done.wait()
        except trio.Cancelled:
            self.loop.call_soon_threadsafe(self._cancel, call)
            with trio.CancelScope(shield=True), trio.move_on_after(cancel_wait):
                await call.done.wait()
            raise
        assert call.task is not None
        return call.task.result()

    def _start(self, call: _Call, coroutine: Coroutine[Any, Any, Any]) -> None:
        """On the loop's thread."""
        call.task = self.loop.create_task(coroutine)
        call.task.add_done_callback(lambda _: self._token.run_sync_soon(call.done.set))

    @staticmethod
    def _cancel(call: _Call) -> None:
        """On the loop's thread, after ``_start`` (the loop runs callbacks in order)."""
        if call.task is not None:
            call.task.cancel()


@asynccontextmanager
async def open_asyncio_thread(
    name: str, exception_handler: ExceptionHandler | None = None
) -> AsyncIterator[AsyncioThread]:
    """A new asyncio loop on a new thread, for as long as the block runs.

    On exit (also when cancelled) the loop is stopped once the callbacks already handed to
    it have run, and the thread is waited for; coroutines still running on it are
    cancelled first and given up to ``SHUTDOWN_GRACE`` seconds to clean up."""
    loop = asyncio.new_event_loop()
    if exception_handler is not None:
        loop.set_exception_handler(exception_handler)
    started = trio.Event()
    token = trio.lowlevel.current_trio_token()

    def run_forever() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(token.run_sync_soon, started.set)
        try:
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=SHUTDOWN_GRACE))
        finally:
            loop.close()
            # The thread goes back to Trio's cache: leave it no (closed) loop of its own.
            asyncio.set_event_loop(None)

    async with trio.open_nursery() as nursery:
        # A limiter of its own: the thread is held for as long as the loop runs, and must
        # not take a place of the default limiter's (password hashing, SQLite, files).
        run = functools.partial(
            trio.to_thread.run_sync,
            run_forever,
            thread_name=name,
            limiter=trio.CapacityLimiter(1),
        )
        nursery.start_soon(run)
        try:
            await started.wait()
            yield AsyncioThread(loop, token)
        finally:
            loop.call_soon_threadsafe(loop.stop)
