"""Calls on the one SQLite connection: one at a time, each in a worker thread, each within
its deadline (``timeout`` seconds from the call, ``HUBBUB_DATABASE_TIMEOUT``).

What the deadline bounds, and what it cannot:

- Waiting for the connection while another call of this process has it: always. Past the
  deadline the call raises ``StorageUnavailable`` and nothing ran.
- SQLite's own wait for another process's write lock (its busy timeout): set, for each
  call, to the time left before the deadline. SQLite then answers SQLITE_BUSY, which is
  ``StorageUnavailable``, and nothing was written.
- The work itself: at the deadline the connection is interrupted (``sqlite3_interrupt``):
  the running statement stops, and a transaction it is in rolls back.

  - A read is then abandoned: its caller gets ``StorageUnavailable`` at once. Its worker
    thread may still run (a statement SQLite cannot interrupt); the connection stays
    taken until that thread is done, so two threads never share it.
  - A write is waited for, so that its answer is the truth: ``StorageUnavailable`` if it
    rolled back (nothing was written), its result if it committed anyway (it was past its
    last interruptible point). A write stuck where SQLite cannot interrupt it (an fsync on
    a stalled disk) is waited for: abandoning it would answer "unavailable" for a write
    that may still commit, and ``unavailable`` from SQLite promises nothing was written.

A caller cancelled from outside leaves at once; the connection, again, stays taken until
its thread is done.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from hubbub.storage.errors import StorageError, StorageUnavailable

T = TypeVar("T")

#: What sqlite3 raises from a call: its own errors, and those of binding a value it cannot
#: hold (an int past 64 bits, a lone surrogate).
SQLITE_FAILURES = (sqlite3.Error, OverflowError, UnicodeEncodeError)


class SqliteCalls:
    """Runs calls on ``conn`` as the module docstring says; ``translate`` turns what
    sqlite3 raised into the storage error the caller gets."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        timeout: float,
        translate: Callable[[Exception], StorageError],
    ) -> None:
        self._conn = conn
        self._timeout = timeout
        self._translate = translate
        # Taken from the moment a call has the connection until its worker thread is done,
        # which for an abandoned call is after its caller left: a Semaphore, which any
        # task may release, not a Lock, which only its owner may.
        self._free = trio.Semaphore(1)

    async def run(
        self, fn: Callable[..., T], *args: Any, writes: bool = True, timeout: float | None = None
    ) -> T:
        """``fn(*args)`` in a worker thread, alone on the connection, within the deadline.

        ``writes=False`` says that ``fn`` writes nothing, so that it may be abandoned.
        Raises ``StorageUnavailable`` past the deadline, and what ``translate`` makes of
        sqlite3's exceptions."""
        timeout = self._timeout if timeout is None else timeout
        deadline = trio.current_time() + timeout
        acquired = False
        with trio.move_on_at(deadline):
            await self._free.acquire()
            acquired = True
        if not acquired:
            raise StorageUnavailable(f"SQLite was busy with other calls for {timeout} s")
        done = trio.Event()
        answer: list[Any] = []  # the outcome.Outcome of fn
        token = trio.lowlevel.current_trio_token()
        busy_ms = max(0, int((deadline - trio.current_time()) * 1000))

        def work() -> T:
            self._conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
            return fn(*args)

        def finish(result: Any) -> None:  # on the Trio thread
            answer.append(result)
            self._free.release()
            done.set()

        def deliver(result: Any) -> None:  # on the worker thread
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(finish, result)

        trio.lowlevel.start_thread_soon(work, deliver)
        with trio.move_on_at(deadline):
            await done.wait()
        interrupted = not done.is_set()
        if interrupted:
            self._conn.interrupt()
            if not writes:
                raise StorageUnavailable(f"SQLite did not answer within {timeout} s")
            await done.wait()
        try:
            return answer[0].unwrap()
        except SQLITE_FAILURES as exc:
            if interrupted and getattr(exc, "sqlite_errorname", "") == "SQLITE_INTERRUPT":
                raise StorageUnavailable(
                    f"SQLite did not finish within {timeout} s; nothing was written"
                ) from exc
            raise self._translate(exc) from exc

    async def close(self) -> None:
        """Close the connection once no call has it (an abandoned one may still run)."""
        await self._free.acquire()
        try:
            await trio.to_thread.run_sync(self._conn.close)
        finally:
            self._free.release()
